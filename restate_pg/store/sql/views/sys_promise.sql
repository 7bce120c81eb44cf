-- sys_promise: the durable promises of workflows
CREATE OR REPLACE VIEW {s}.sys_promise AS
SELECT NULL::text AS scope, service AS service_name, key AS service_key, name AS key, completed,
       CASE WHEN completed AND failure_code IS NULL THEN value END AS completion_success_value,
       CASE WHEN completed AND failure_code IS NULL THEN {s}.bytes_as_utf8(value) END AS completion_success_value_utf8,
       CASE WHEN failure_code IS NOT NULL THEN '[' || failure_code || '] ' || failure_message END AS completion_failure
  FROM {s}.promise;
