-- fence: the first statement of every transaction an attempt commits: share-lock the invocation's task row
-- and fail (SQLSTATE RPG01) unless the attempt still holds the lease, so that a worker that lost it
-- (paused, partitioned, declared dead) can never apply a stale write. The row is found by its key
-- alone and the lease compared after: with the lease in the WHERE clause, a session that planned
-- it while `task` was small kept an index scan of every task of the worker (`task_owner`), a
-- third of PostgreSQL's CPU once a thousand were running (bench/README.md, "TypeScript handlers").
CREATE OR REPLACE FUNCTION {s}.fence(p_invocation_id text, p_owner text, p_epoch integer)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_owner text;
    v_epoch integer;
BEGIN
    SELECT lease_owner, epoch INTO v_owner, v_epoch FROM {s}.task
     WHERE invocation_id = p_invocation_id
       FOR SHARE;
    IF NOT FOUND OR v_owner IS DISTINCT FROM p_owner OR v_epoch <> p_epoch THEN
        RAISE EXCEPTION 'restate-pg: attempt % of invocation % lost its lease', p_epoch, p_invocation_id
            USING ERRCODE = 'RPG01';
    END IF;
END
$$;
