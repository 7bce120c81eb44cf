-- append_journal: record the journal entries of flushes (each {"id": ..., "journal": [...]}), in one
-- statement for a whole group (apply's journal-only flushes) or for one (flush()); a field an
-- entry leaves out is NULL, and its appended_at, when it has none, the transaction's now().
-- PL/pgSQL, not SQL: PostgreSQL before 18 parses and plans a SQL function's body at every call
-- that cannot be inlined (PERFORM's are not), PL/pgSQL once per session (measured: 3x cheaper).
CREATE OR REPLACE FUNCTION {s}.append_journal(p_flushes jsonb)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO {s}.journal (invocation_id, index, command_index, completes, entry_type, name, params,
                             completed, value, failure_code, failure_message, failure_metadata,
                             sleep_wakeup_at, message, appended_at)
    SELECT f.value->>'id', j.index, j.command_index, j.completes, j.entry_type, j.name, j.params,
           COALESCE(j.completed, false), decode(j.value, 'base64'), j.failure_code, j.failure_message,
           j.failure_metadata, j.sleep_wakeup_at, decode(j.message, 'base64'), COALESCE(j.appended_at, now())
      FROM jsonb_array_elements(p_flushes) AS f,
           jsonb_to_recordset(f.value->'journal') AS j(
               index integer, command_index integer, completes integer, entry_type text, name text,
               params jsonb, completed boolean, value text, failure_code integer, failure_message text,
               failure_metadata jsonb, sleep_wakeup_at timestamptz, message text, appended_at timestamptz);
END
$$;
