-- sys_inbox: exclusive invocations waiting for their object key, in FIFO order per key
CREATE OR REPLACE VIEW {s}.sys_inbox AS
SELECT b.service AS service_name, b.key AS service_key, b.invocation_id AS id, b.seq AS sequence_number,
       i.created_at
  FROM {s}.inbox b LEFT JOIN {s}.invocation i ON i.id = b.invocation_id;
