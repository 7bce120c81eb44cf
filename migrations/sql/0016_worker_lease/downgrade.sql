-- Revision 0016 (0016_worker_lease), downgrade. Frozen once released, never edited (migrations/README.md).
-- Back to every worker judged by the reaper's own lease.
ALTER TABLE "{schema}".worker DROP COLUMN lease_ms;
