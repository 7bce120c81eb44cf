-- Revision 0009 (0009_completed_attempts), upgrade. Frozen once released, never edited (migrations/README.md).
ALTER TABLE "{schema}".invocation ADD COLUMN attempts INTEGER;

-- keep_attempts: when an invocation completes, copy its attempt count from its live-work row
-- (deleted in the same transaction) into the invocation, so that operators still see how many
-- attempts it took. A trigger (invocation_keep_attempts), so that every way an invocation
-- completes (flush, kill, cancel, finish) keeps it without each function saying so.
CREATE OR REPLACE FUNCTION "{schema}".keep_attempts()
RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.attempts := COALESCE((SELECT attempt FROM "{schema}".task WHERE invocation_id = NEW.id), NEW.attempts, 0);
    RETURN NEW;
END
$$;

CREATE TRIGGER invocation_keep_attempts BEFORE UPDATE OF status ON "{schema}".invocation
    FOR EACH ROW WHEN (NEW.status = 'completed' AND OLD.status <> 'completed')
    EXECUTE FUNCTION "{schema}".keep_attempts();
