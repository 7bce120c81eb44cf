"""Every SQL statement restate-pg runs, loaded from the `.sql` files under `store/sql/`.

The SQL lives in files so that it reads, diffs and greps as SQL, in one place:

- `sql/queries/<concern>.sql`: the named statements (submitting, claiming, attempts, operators,
  workers, services, cron, retention, migrations, testing). Each begins with `-- name: <name>`,
  then its purpose in a comment (first line: what it does; further comment lines: why, locks,
  what it returns), then the statement. `Queries(schema).CLAIM_TASKS` is `-- name: claim_tasks`.
- `sql/functions/<function>.sql`: one server-side function each (`procedures.py` lists them in
  creation order; `apply()` and `flush()` carry the write path).
- `sql/views/<view>.sql`: one introspection view each (`introspection.py`).

Placeholders, the only two kinds:

- `%(name)s` is a psycopg parameter, bound when the statement runs (`apply` alone takes its one
  JSON argument as libpq's `$1`: store/prepared_call.py sends it without a cursor);
- `{s}` is the quoted schema name, filled in once per schema by `Queries` (or `fill_schema`).

(The test-database statements also hold `{name}` / `{tables}`: identifiers the caller composes
with psycopg's `sql.SQL(...).format`; they never contain `{s}`.) Constants the functions share
with Python (advisory lock namespaces, the cancel signal, the eager-state limit, the fencing
SQLSTATE) are written as literals in the SQL; tests/test_sql_files.py checks they agree.

The text handed to the driver starts with `-- <name>: <purpose>`, as when the statements were
Python strings: `faults.statement_name` and anyone reading `pg_stat_activity` see the name first.
Alembic's revisions do not use these files: their SQL is frozen under `migrations/sql/`.
`docs/invocation-lifecycle.md` explains which transaction each statement belongs to.
"""

from __future__ import annotations

import functools
import importlib.resources
import re
from dataclasses import dataclass

_SCHEMA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_NAME_LINE = re.compile(r"^-- name: ([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)

#: The folder, inside this package, that holds the `.sql` files.
SQL_PACKAGE = "restate_pg.store"

#: The schema holding restate-pg's tables unless told otherwise (`--schema`, `$RESTATE_PG_SCHEMA`).
DEFAULT_SCHEMA = "restate"


def quote_schema(schema: str) -> str:
    """The schema name as a quoted identifier (names that would need escaping are refused)."""
    if not _SCHEMA_NAME.match(schema):
        raise ValueError(f"invalid schema name {schema!r}: use letters, digits and underscores")
    return f'"{schema}"'


def fill_schema(template: str, schema: str) -> str:
    """`template` with its `{s}` placeholders replaced by the quoted schema name."""
    return template.replace("{s}", quote_schema(schema))


def read_sql(folder: str, name: str) -> str:
    """The text of `sql/<folder>/<name>.sql`, placeholders unfilled (works from a wheel too)."""
    return importlib.resources.files(SQL_PACKAGE).joinpath("sql").joinpath(folder).joinpath(f"{name}.sql").read_text(encoding="utf-8")


def parse_statements(text: str, source: str = "<sql>") -> dict[str, str]:
    """The named statements of one queries file, by name, each as the driver receives it."""
    found: dict[str, str] = {}
    heads = list(_NAME_LINE.finditer(text))
    for head, following in zip(heads, [*heads[1:], None]):
        name = head.group(1)
        block = text[head.end() + 1 : following.start() if following else len(text)].rstrip() + "\n"
        purpose, _, rest = block.partition("\n")
        if not purpose.startswith("-- ") or not rest.strip():
            raise ValueError(f"{source}: statement {name!r} needs a purpose comment, then SQL")
        if name in found:
            raise ValueError(f"{source}: statement {name!r} is defined twice")
        found[name] = f"\n-- {name}: {purpose[3:]}\n{rest}"
    return found


@functools.cache
def statements() -> dict[str, str]:
    """Every named statement of `sql/queries/*.sql`, by name (lower case), `{s}` unfilled."""
    found: dict[str, str] = {}
    folder = importlib.resources.files(SQL_PACKAGE).joinpath("sql").joinpath("queries")
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".sql"):
            continue
        for name, text in parse_statements(entry.read_text(encoding="utf-8"), entry.name).items():
            if name in found:
                raise ValueError(f"statement {name!r} is defined in two files under sql/queries/")
            found[name] = text
    return found


def __getattr__(name: str) -> str:
    """`queries.CREATE_DATABASE`: a statement's template, `{s}` unfilled (for callers that compose
    identifiers themselves, as restate_pg.testing does)."""
    text = statements().get(name.lower()) if name.isupper() else None
    if text is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return text


@dataclass(frozen=True)
class Queries:
    """The named statements with the schema filled in: `Queries("restate").GET_INVOCATION`."""

    schema: str

    def __getattr__(self, name: str) -> str:
        template = statements().get(name.lower()) if name.isupper() else None
        if template is None:
            raise AttributeError(name)
        text = fill_schema(template, self.schema)
        object.__setattr__(self, name, text)  # cache on the instance
        return text
