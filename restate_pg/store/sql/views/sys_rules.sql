-- sys_rules: the flow-control rules, with the columns of Restate's table (pattern, concurrency,
-- description, disabled, version, last_modified) and restate-pg's other limits after them; a rule
-- on a service or handler (`service:<service>[/<handler>]`) names them in target_service/_handler
CREATE OR REPLACE VIEW {s}.sys_rules AS
SELECT pattern, concurrency, description, disabled, version, last_modified,
       rate, rate_interval_ms, burst, backlog,
       CASE WHEN level >= 3 THEN scope_part END AS target_service,
       CASE WHEN level = 4 THEN l1_part END AS target_handler,
       concurrency_per_key, priority, debounce_ms
  FROM {s}.flow_rule;
