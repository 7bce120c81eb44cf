-- Revision 0007 (0007_sys_invocation_status), upgrade. Frozen once released, never edited (migrations/README.md).
-- sys_invocation_status: each invocation's status as Restate stores it (inboxed, scheduled,
-- invoked, suspended, paused, completed), without the attempt columns; Restate's CLI finds the
-- invocations to cancel, kill or purge here
CREATE OR REPLACE VIEW "{schema}".sys_invocation_status AS
SELECT id, target, target_service_name, target_service_key, target_handler_name, target_service_ty,
       CASE status WHEN 'pending' THEN 'inboxed' WHEN 'ready' THEN 'invoked' WHEN 'running' THEN 'invoked'
                   WHEN 'backing-off' THEN 'invoked' ELSE status END AS status,
       vqueue_id, scope, limit_key, idempotency_key, invoked_by, invoked_by_service_name, invoked_by_id,
       invoked_by_subscription_id, invoked_by_target, restarted_from, pinned_deployment_id,
       pinned_service_protocol_version, trace_id, journal_size, journal_commands_size, created_at,
       created_using_restate_version, modified_at, inboxed_at, scheduled_at, scheduled_start_at, running_at,
       completed_at, completion_retention, journal_retention, suspended_waiting_for_completions,
       suspended_waiting_for_signals, suspended_waiting_future_json, completion_result, completion_failure
  FROM "{schema}".sys_invocation;
