ALTER TABLE "{schema}".cron_job
    DROP COLUMN priority,
    DROP COLUMN limit_key,
    DROP COLUMN scope;
