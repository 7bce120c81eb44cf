-- Revision 0011 (0011_ui_indexes), upgrade. Frozen once released, never edited (migrations/README.md).
-- The operator UI pages invocations newest first with a keyset (created_at, id): these indexes
-- answer its first page and every next one without sorting the retained completed invocations,
-- for all services and for one.
CREATE INDEX IF NOT EXISTS invocation_created ON "{schema}".invocation (created_at, id);
CREATE INDEX IF NOT EXISTS invocation_service_created ON "{schema}".invocation (service, created_at, id);
-- Failures are what operators look for among the retained: their own (small, partial) index.
CREATE INDEX IF NOT EXISTS invocation_failed_created ON "{schema}".invocation (created_at, id) WHERE result = 'failure';
