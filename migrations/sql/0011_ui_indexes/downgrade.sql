-- Revision 0011 (0011_ui_indexes), downgrade. Frozen once released, never edited (migrations/README.md).
DROP INDEX IF EXISTS "{schema}".invocation_failed_created;
DROP INDEX IF EXISTS "{schema}".invocation_service_created;
DROP INDEX IF EXISTS "{schema}".invocation_created;
