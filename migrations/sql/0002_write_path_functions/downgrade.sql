-- Revision 0002 (0002_write_path_functions), downgrade. Frozen once released, never edited (migrations/README.md).
DROP FUNCTION IF EXISTS "{schema}".apply(jsonb);

DROP FUNCTION IF EXISTS "{schema}".flush(jsonb);

DROP FUNCTION IF EXISTS "{schema}".started(jsonb, text);

DROP FUNCTION IF EXISTS "{schema}".kill_invocation(text);

DROP FUNCTION IF EXISTS "{schema}".cancel_invocation(text);

DROP FUNCTION IF EXISTS "{schema}".finish_invocation(text, integer, text);

DROP FUNCTION IF EXISTS "{schema}".attach_invocation(text, text, integer);

DROP FUNCTION IF EXISTS "{schema}".complete_promise(text, text, jsonb);

DROP FUNCTION IF EXISTS "{schema}".get_promise(text, text, text, text, integer, boolean);

DROP FUNCTION IF EXISTS "{schema}".lock_promise(text, text, text);

DROP FUNCTION IF EXISTS "{schema}".resolve_awakeable(jsonb);

DROP FUNCTION IF EXISTS "{schema}".deliver_notification(text, integer, bytea, integer, text, jsonb);

DROP FUNCTION IF EXISTS "{schema}".eager_state(text, text);

DROP FUNCTION IF EXISTS "{schema}".release_object_key(text, text, text, text);

DROP FUNCTION IF EXISTS "{schema}".submit_invocation(jsonb);

DROP FUNCTION IF EXISTS "{schema}".lock_object_key(text, text);
