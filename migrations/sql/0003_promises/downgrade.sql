-- Revision 0003 (0003_promises), downgrade. Frozen once released, never edited (migrations/README.md).
DROP TABLE {schema}.invocation_waiter;

DROP TABLE {schema}.promise_waiter;

DROP TABLE {schema}.promise;
