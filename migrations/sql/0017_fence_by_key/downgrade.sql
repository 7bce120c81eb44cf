-- Revision 0017 (0017_fence_by_key), downgrade. Frozen once released, never edited (migrations/README.md).
-- Back to the lease in the WHERE clause.
-- fence: the first statement of every transaction an attempt commits: share-lock the invocation's task row
-- and fail (SQLSTATE RPG01) unless the attempt still holds the lease, so that a worker that lost it
-- (paused, partitioned, declared dead) can never apply a stale write
CREATE OR REPLACE FUNCTION "{schema}".fence(p_invocation_id text, p_owner text, p_epoch integer)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM "{schema}".task
     WHERE invocation_id = p_invocation_id AND lease_owner = p_owner AND epoch = p_epoch
       FOR SHARE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'restate-pg: attempt % of invocation % lost its lease', p_epoch, p_invocation_id
            USING ERRCODE = 'RPG01';
    END IF;
END
$$;
