-- The types waiters declared for the values that complete them (api/completions.py): read by
-- whoever completes an awakeable or a promise, to refuse a value the waiter could never take.

-- name: awakeable_schema
-- the JSON schema of the type an awakeable's creator declared, journaled with the awakeable
-- (no row: no such awakeable journaled; a NULL schema: none declared, or journaled by an earlier version)
SELECT params->'schema' AS schema
  FROM {s}.journal
 WHERE invocation_id = %(invocation_id)s AND command_index = %(command_index)s AND entry_type = 'Awakeable'
   AND value = convert_to(%(id)s, 'UTF8')

-- name: promise_schemas
-- the JSON schemas of the types declared by the commands waiting for a workflow's promise
-- (registered waiters only: a handler that has not reached its wait has declared nothing yet)
SELECT DISTINCT j.params->'schema' AS schema
  FROM {s}.promise_waiter w
  JOIN {s}.journal j ON j.invocation_id = w.invocation_id AND j.command_index = w.command_index
 WHERE w.service = %(service)s AND w.key = %(key)s AND w.name = %(name)s
   AND j.entry_type = 'GetPromise' AND j.params ? 'schema'
