-- sys_keyed_service_status: which invocation holds each locked object key
CREATE OR REPLACE VIEW {s}.sys_keyed_service_status AS
SELECT service AS service_name, key AS service_key, invocation_id
  FROM {s}.object_lock;
