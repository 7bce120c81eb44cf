-- fence: the first statement of every transaction an attempt commits: key-share-lock the invocation's
-- task row and fail (SQLSTATE RPG01) unless the attempt still holds the lease, so that a worker that
-- lost it (paused, partitioned, declared dead) can never apply a stale write. FOR KEY SHARE, the
-- weakest row lock: it conflicts only with FOR UPDATE and DELETE, which is how every statement that
-- takes a lease away or ends a task starts (reap, heartbeat, unregister, pause, kill), so a takeover
-- still waits for a fenced transaction and then sees its writes; a mailbox delivery (an UPDATE of
-- `wakeups`) no longer waits for one. FOR SHARE cost a third of PostgreSQL's CPU per invocation
-- in the TypeScript W4 benchmark (bench/README.md), this the cost of a plain read.
CREATE OR REPLACE FUNCTION {s}.fence(p_invocation_id text, p_owner text, p_epoch integer)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM {s}.task
     WHERE invocation_id = p_invocation_id AND lease_owner = p_owner AND epoch = p_epoch
       FOR KEY SHARE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'restate-pg: attempt % of invocation % lost its lease', p_epoch, p_invocation_id
            USING ERRCODE = 'RPG01';
    END IF;
END
$$;
