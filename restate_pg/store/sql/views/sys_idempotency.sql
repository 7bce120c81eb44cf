-- sys_idempotency: the invocations submitted with an idempotency key, while they are retained
CREATE OR REPLACE VIEW {s}.sys_idempotency AS
SELECT service AS service_name, key AS service_key, handler AS service_handler, idempotency_key,
       id AS invocation_id
  FROM {s}.invocation WHERE idempotency_key IS NOT NULL;
