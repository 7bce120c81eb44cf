-- flow_rule_for: the most specific enabled rule of one level (0: the scope, 1: the limit key's
-- first part, 2: its second) that matches a scope and limit key, as Restate ranks patterns
-- (an exact part outranks `*`, the scope most, then the first part, then the second).
CREATE OR REPLACE FUNCTION {s}.flow_rule_for(p_scope text, p_limit_key text, p_level integer)
RETURNS {s}.flow_rule LANGUAGE sql STABLE AS $$
    SELECT r.* FROM {s}.flow_rule r
     WHERE NOT r.disabled AND r.level = p_level
       AND (r.scope_part = '*' OR r.scope_part = p_scope)
       AND (p_level < 1 OR r.l1_part = '*' OR r.l1_part = split_part(p_limit_key, '/', 1))
       AND (p_level < 2 OR r.l2_part = '*' OR r.l2_part = split_part(p_limit_key, '/', 2))
     ORDER BY r.rank DESC
     LIMIT 1
$$;
