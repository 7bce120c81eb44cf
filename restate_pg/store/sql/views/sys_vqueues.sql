-- sys_vqueues: one row per scope and limit key with unfinished invocations (Restate's virtual
-- queues): how many are running (leased), queued (ready, waiting for a slot or a token),
-- waiting (suspended, backing off, paused, scheduled), the oldest queued one's age in ms
CREATE OR REPLACE VIEW {s}.sys_vqueues AS
SELECT t.scope, t.limit_key,
       count(*) FILTER (WHERE t.lease_owner IS NOT NULL)::bigint AS num_running,
       count(*) FILTER (WHERE t.lease_owner IS NULL AND t.run_at <= now() AND t.status = 'ready')::bigint AS num_queued,
       count(*) FILTER (WHERE t.lease_owner IS NULL AND NOT (t.run_at <= now() AND t.status = 'ready'))::bigint AS num_waiting,
       (EXTRACT(EPOCH FROM now() - min(t.run_at) FILTER (WHERE t.lease_owner IS NULL AND t.run_at <= now() AND t.status = 'ready')) * 1000)::bigint
           AS oldest_queued_ms,
       max(t.priority) AS max_priority
  FROM {s}.task t
 WHERE t.scope IS NOT NULL
 GROUP BY t.scope, t.limit_key;
