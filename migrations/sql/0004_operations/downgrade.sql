-- Revision 0004 (0004_operations), downgrade. Frozen once released, never edited (migrations/README.md).
DROP INDEX {schema}.cron_job_due;

DROP TABLE {schema}.cron_job;

DROP TABLE {schema}.service;

DROP TABLE {schema}.deployment;

ALTER TABLE {schema}.worker DROP COLUMN deployment_id;

ALTER TABLE {schema}.task DROP COLUMN deployment_id;

ALTER TABLE {schema}.invocation DROP COLUMN restarted_from;

ALTER TABLE {schema}.invocation DROP COLUMN deployment_id;
