-- sys_user_limits: per scope and level of its limit keys (Restate's `level`: scope, l1, l2), the
-- rule that applies, its concurrency, how many run (usage), how many more may start (available)
-- and how many queue for it (num_waiters); rate-limited levels show their tokens left
CREATE OR REPLACE VIEW {s}.sys_user_limits AS
WITH keys AS (
    SELECT DISTINCT t.scope, 0 AS lvl, '' AS key FROM {s}.task t WHERE t.scope IS NOT NULL
    UNION
    SELECT DISTINCT t.scope, 1, split_part(t.limit_key, '/', 1) FROM {s}.task t
     WHERE t.scope IS NOT NULL AND COALESCE(t.limit_key, '') <> ''
    UNION
    SELECT DISTINCT t.scope, 2, t.limit_key FROM {s}.task t WHERE t.scope IS NOT NULL AND t.limit_key LIKE '%/%'
), counted AS (
    SELECT k.scope, k.lvl, k.key,
           count(*) FILTER (WHERE t.lease_owner IS NOT NULL)::bigint AS usage,
           count(*) FILTER (WHERE t.lease_owner IS NULL AND t.run_at <= now() AND t.status = 'ready')::bigint AS num_waiters
      FROM keys k JOIN {s}.task t ON t.scope = k.scope
       AND (k.lvl = 0 OR (k.lvl = 1 AND split_part(t.limit_key, '/', 1) = k.key) OR (k.lvl = 2 AND t.limit_key = k.key))
     GROUP BY k.scope, k.lvl, k.key
)
SELECT c.scope, CASE c.lvl WHEN 0 THEN 'scope' WHEN 1 THEN 'l1' ELSE 'l2' END AS level,
       NULLIF(c.key, '') AS limit_key, c.usage, r.concurrency AS concurrency_limit, r.pattern AS rule_pattern,
       CASE WHEN r.concurrency IS NULL THEN NULL ELSE greatest(r.concurrency - c.usage, 0) END AS available,
       c.num_waiters, r.rate, r.backlog, fc.tokens
  FROM counted c
  LEFT JOIN LATERAL {s}.flow_rule_for(c.scope, CASE WHEN c.lvl = 0 THEN '' ELSE c.key END, c.lvl) r ON r.pattern IS NOT NULL
  LEFT JOIN {s}.flow_counter fc ON fc.scope = c.scope AND fc.limit_key = c.key AND r.rate IS NOT NULL;
