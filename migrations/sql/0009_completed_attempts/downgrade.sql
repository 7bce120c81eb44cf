-- Revision 0009 (0009_completed_attempts), downgrade. Frozen once released, never edited (migrations/README.md).
DROP TRIGGER IF EXISTS invocation_keep_attempts ON "{schema}".invocation;
DROP FUNCTION IF EXISTS "{schema}".keep_attempts();
ALTER TABLE "{schema}".invocation DROP COLUMN IF EXISTS attempts;
