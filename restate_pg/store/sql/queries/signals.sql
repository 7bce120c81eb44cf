-- Named signals sent by a handler (ctx.resolve_signal / ctx.reject_signal) to another invocation.
-- Each statement: `-- name: <name>`, then its purpose; see restate_pg/store/queries.py.

-- name: send_signal
-- deliver one named signal (resolve_signal()); returns {"status", "owner"}. Sent just before the
-- flush that journals the SendSignal command: should that flush not commit, the retried attempt
-- sends it again, and resolve_signal() ignores a second signal of the same name
SELECT {s}.resolve_signal(%(signal)s::jsonb)
