-- Revision 0001 (0001_initial), downgrade. Frozen once released, never edited (migrations/README.md).
DROP FUNCTION IF EXISTS "{schema}".fence(text, text, integer);

DROP TABLE {schema}.worker;

DROP TABLE {schema}.inbox;

DROP TABLE {schema}.object_lock;

DROP TABLE {schema}.state;

DROP TABLE {schema}.notification;

DROP TABLE {schema}.journal;

DROP TABLE {schema}.task;

DROP TABLE {schema}.invocation;
