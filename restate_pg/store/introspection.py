"""Views that carry Restate's SQL introspection tables, over restate-pg's own tables.

Operators who know `restate sql` ask the same questions here, with the same table and column
names and the same status vocabulary (reference section 4): a query written for Restate runs with
at most the schema prefix changed. Columns that have no counterpart in restate-pg are NULL.

Each view is shaped so that its common question is answered by an index: `sys_invocation` is a
UNION ALL of one branch per storage state, so a filter on `status` drops the branches that cannot
match and a filter on `target_service_name` meets the (service, status) index; `sys_journal` and
`state` are keyed like their tables. Each view is a file, `store/sql/views/<view>.sql`, and their
helper function is `store/sql/functions/bytes_as_utf8.sql`. The migrations create them from frozen
copies (`migrations/sql/0005_introspection/`, `0007_sys_invocation_status/`); a test checks that
a migrated database agrees with the files.
"""

from __future__ import annotations

from restate_pg.store.queries import fill_schema, read_sql

#: The views, in creation order.
VIEW_NAMES = (
    "state",
    "sys_invocation",
    "sys_invocation_status",
    "sys_journal",
    "sys_inbox",
    "sys_keyed_service_status",
    "sys_idempotency",
    "sys_promise",
    "sys_service",
    "sys_deployment",
    "sys_rules",
    "sys_vqueues",
    "sys_user_limits",
)

#: The helper functions of the views, by signature (for DROP FUNCTION).
FUNCTION_SIGNATURES = ("bytes_as_utf8(bytea)",)


def introspection_sql(schema: str) -> str:
    """DDL creating (or replacing) the introspection views and their helper in `schema`:
    `sql/functions/bytes_as_utf8.sql`, then `sql/views/<view>.sql` in creation order."""
    files = [read_sql("functions", "bytes_as_utf8"), *(read_sql("views", name) for name in VIEW_NAMES)]
    return fill_schema("".join("\n" + text for text in files), schema)


def drop_introspection_sql(schema: str) -> str:
    """DDL dropping the views, then their helper (reverse creation order)."""
    views = [f'DROP VIEW IF EXISTS "{schema}".{name};' for name in reversed(VIEW_NAMES)]
    functions = [f'DROP FUNCTION IF EXISTS "{schema}".{sig};' for sig in FUNCTION_SIGNATURES]
    return "\n".join(views + functions)
