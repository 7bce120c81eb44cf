-- Revision 0007 (0007_sys_invocation_status), downgrade. Frozen once released, never edited (migrations/README.md).
DROP VIEW IF EXISTS "{schema}".sys_invocation_status;
