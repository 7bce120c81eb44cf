-- Cron schedules carry flow control (issue 17, docs/flow-control.md): each tick's invocation is
-- started with the schedule's scope, limit key and priority. Nullable / defaulted, so that the
-- statements of the previous release (which name no such column) still work.
ALTER TABLE "{schema}".cron_job
    ADD COLUMN scope text,
    ADD COLUMN limit_key text,
    ADD COLUMN priority integer NOT NULL DEFAULT 0;
