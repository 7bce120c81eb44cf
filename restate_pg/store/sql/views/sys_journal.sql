-- sys_journal: the journal of each invocation, with its input (index 0) and, once completed, its
-- output (after the last entry), which restate-pg keeps on the invocation row
CREATE OR REPLACE VIEW {s}.sys_journal AS
SELECT j.invocation_id AS id, j.index,
       CASE WHEN j.command_index IS NOT NULL
            THEN 'Command: ' || CASE j.entry_type WHEN 'GetState' THEN 'GetEagerState'
                                                 WHEN 'GetStateKeys' THEN 'GetEagerStateKeys'
                                                 WHEN 'CancelInvocation' THEN 'SendSignal'
                                                 ELSE j.entry_type END
            ELSE 'Notification: ' || CASE WHEN j.entry_type IN ('Awakeable', 'Cancel') THEN 'Signal'
                                          ELSE j.entry_type END
       END AS entry_type,
       j.name,
       j.command_index IS NULL OR j.completed OR EXISTS (
           SELECT 1 FROM {s}.journal n WHERE n.invocation_id = j.invocation_id AND n.completes = j.command_index
       ) AS completed,
       CASE WHEN j.command_index IS NOT NULL AND j.entry_type IN ('Call', 'OneWayCall')
            THEN j.params->>'invocation_id' END AS invoked_id,
       CASE WHEN j.command_index IS NOT NULL AND j.entry_type IN ('Call', 'OneWayCall')
            THEN (j.params->>'service') || '/' || COALESCE((j.params->>'key') || '/', '') || (j.params->>'handler')
       END AS invoked_target,
       j.sleep_wakeup_at,
       CASE WHEN j.command_index IS NOT NULL AND j.entry_type IN ('GetPromise', 'PeekPromise', 'CompletePromise')
            THEN j.params->>'name' END AS promise_name,
       j.value AS raw, octet_length(j.value)::bigint AS raw_length, 2 AS version,
       (jsonb_strip_nulls(jsonb_build_object(
           'type', j.entry_type, 'command_index', j.command_index, 'completes', j.completes,
           'name', j.name, 'params', j.params,
           'failure', CASE WHEN j.failure_code IS NOT NULL THEN jsonb_build_object(
               'code', j.failure_code, 'message', j.failure_message, 'metadata', j.failure_metadata) END)) || jsonb_strip_nulls(jsonb_build_object(
           'value', {s}.bytes_as_utf8(j.value),
           'value_base64', CASE WHEN {s}.bytes_as_utf8(j.value) IS NULL THEN encode(j.value, 'base64') END)))::text AS entry_json,
       jsonb_strip_nulls(jsonb_build_object(
           'type', j.entry_type, 'command_index', j.command_index, 'completes', j.completes,
           'name', j.name, 'params', j.params,
           'failure', CASE WHEN j.failure_code IS NOT NULL THEN jsonb_build_object(
               'code', j.failure_code, 'message', j.failure_message, 'metadata', j.failure_metadata) END))::text AS entry_lite_json,
       j.appended_at
  FROM {s}.journal j
UNION ALL
SELECT i.id, 0, 'Command: Input', NULL, true, NULL, NULL, NULL, NULL, i.input, octet_length(i.input)::bigint, 2,
       (jsonb_build_object('type', 'Input', 'headers', i.headers) || jsonb_strip_nulls(jsonb_build_object(
           'value', {s}.bytes_as_utf8(i.input),
           'value_base64', CASE WHEN {s}.bytes_as_utf8(i.input) IS NULL THEN encode(i.input, 'base64') END)))::text,
       jsonb_build_object('type', 'Input', 'headers', i.headers)::text,
       i.created_at
  FROM {s}.invocation i
UNION ALL
SELECT i.id, (SELECT COALESCE(max(j.index), 0) + 1 FROM {s}.journal j WHERE j.invocation_id = i.id),
       'Command: Output', NULL, true, NULL, NULL, NULL, NULL, i.output, octet_length(i.output)::bigint, 2,
       (jsonb_strip_nulls(jsonb_build_object('type', 'Output', 'failure', CASE WHEN i.failure_code IS NOT NULL THEN jsonb_build_object('code', i.failure_code, 'message', i.failure_message, 'metadata', i.failure_metadata) END)) || jsonb_strip_nulls(jsonb_build_object(
           'value', {s}.bytes_as_utf8(i.output),
           'value_base64', CASE WHEN {s}.bytes_as_utf8(i.output) IS NULL THEN encode(i.output, 'base64') END)))::text,
       jsonb_strip_nulls(jsonb_build_object('type', 'Output', 'failure', CASE WHEN i.failure_code IS NOT NULL THEN jsonb_build_object('code', i.failure_code, 'message', i.failure_message, 'metadata', i.failure_metadata) END))::text,
       i.completed_at
  FROM {s}.invocation i
 WHERE i.status = 'completed';
