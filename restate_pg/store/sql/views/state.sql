-- state: every state value of virtual objects and workflows, as bytes and as text
CREATE OR REPLACE VIEW {s}.state AS
SELECT NULL::text AS scope, service AS service_name, key AS service_key, name AS key,
       octet_length(name)::bigint AS key_length, {s}.bytes_as_utf8(value) AS value_utf8, value,
       octet_length(value)::bigint AS value_length
  FROM {s}.state_entry;
