-- flow_released: a task under flow control gave its lease up (completed, suspended, failed,
-- paused, killed, reaped): its slot is free, so workers are hinted to claim what waits for it.
-- A trigger (task_flow_released), so that every path that ends a lease hints without saying so;
-- the hint is sent at commit, with the transaction that freed the slot.
CREATE OR REPLACE FUNCTION {s}.flow_released()
RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('rpg_' || lower(TG_TABLE_SCHEMA) || '_work', '');
    RETURN NULL;
END
$$;
