-- Revision 0016 (0016_worker_lease), upgrade. Frozen once released, never edited (migrations/README.md).
-- Each worker records its own lease length, so that a worker with a shorter lease never declares
-- a live worker with a longer one dead between its heartbeats (reap_workers judges each worker by
-- its own lease; NULL, as a worker of an earlier release registers, falls back to the reaper's).
ALTER TABLE "{schema}".worker ADD COLUMN lease_ms integer;
