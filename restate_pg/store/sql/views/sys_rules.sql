-- sys_rules: the flow-control rules, with the columns of Restate's table (pattern, concurrency,
-- description, disabled, version, last_modified) and restate-pg's other limits after them
CREATE OR REPLACE VIEW {s}.sys_rules AS
SELECT pattern, concurrency, description, disabled, version, last_modified,
       rate, rate_interval_ms, burst, backlog
  FROM {s}.flow_rule;
