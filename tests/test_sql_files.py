"""The `.sql` files under restate_pg/store/sql/: every statement named and explained, one
placeholder convention, one file per server function and per view, constants that agree with
Python, and every statement the code names defined (no database needed)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from restate_pg.store import introspection, procedures, queries
from restate_pg.store.queries import Queries, parse_statements, statements
from restate_pg.store.schema import FENCED_SQLSTATE

REPO = Path(__file__).resolve().parents[1]
SQL = REPO / "restate_pg" / "store" / "sql"


def _files(folder: str) -> dict[str, str]:
    return {path.stem: path.read_text() for path in sorted((SQL / folder).glob("*.sql"))}


def test_every_queries_file_holds_named_statements_with_a_purpose() -> None:
    names: list[str] = []
    for stem, text in _files("queries").items():
        found = parse_statements(text, stem)
        assert found, f"{stem}.sql holds no `-- name:` statement"
        assert len(re.findall(r"^-- name:", text, re.MULTILINE)) == len(found), stem
        names += found
        for name, statement in found.items():
            purpose = statement.splitlines()[1]
            assert re.fullmatch(rf"-- {name}: \S.{{8,}}", purpose), (stem, name, purpose)
    assert len(names) == len(set(names)) == len(statements())


def test_a_statement_without_purpose_or_defined_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="purpose"):
        parse_statements("-- name: bare\nSELECT 1\n")
    with pytest.raises(ValueError, match="twice"):
        parse_statements("-- name: one\n-- a purpose\nSELECT 1\n\n-- name: one\n-- again\nSELECT 2\n")


def test_placeholders_are_psycopg_parameters_and_the_schema() -> None:
    # Python's str.format escapes ({{, }}) and positional %s would mean a statement was pasted from
    # an old template; `apply` alone takes its one JSON argument positionally (group_commit.py).
    for folder in ("queries", "functions", "views"):
        for stem, text in _files(folder).items():
            assert "{{" not in text and "}}" not in text, (folder, stem)
            assert "{s}" in text, (folder, stem)
            assert "{schema}" not in text, (folder, stem)
    for name, text in statements().items():
        positional = re.findall(r"%s\b", text)
        assert not positional or name == "apply", name
        assert not re.findall(r"%\((\w+)\)(?!s)", text), name


def test_the_schema_is_filled_in_quoted() -> None:
    text = Queries("Some_Schema").GET_INVOCATION
    assert '"Some_Schema".invocation' in text and "{s}" not in text
    assert text.startswith("\n-- get_invocation: ")
    assert queries.CREATE_DATABASE.startswith("\n-- create_database: ")  # the raw template, for psycopg to compose
    with pytest.raises(AttributeError):
        Queries("restate").NO_SUCH_STATEMENT
    with pytest.raises(ValueError, match="invalid schema name"):
        Queries('x"; DROP TABLE y; --').GET_INVOCATION


def test_every_statement_the_code_names_is_defined() -> None:
    used: set[str] = set()
    pattern = re.compile(r"(?:\b_?q|\bqueries|Queries\([^()]*\))\.([A-Z][A-Z0-9_]+)\b")
    for path in [*(REPO / "restate_pg").rglob("*.py"), *(REPO / "migrations").rglob("*.py"), *(REPO / "tests").rglob("*.py")]:
        if path != Path(__file__).resolve():
            used |= set(pattern.findall(path.read_text()))
    assert used, "the pattern finds no use at all"
    assert {name.lower() for name in used} <= set(statements()), sorted(n for n in used if n.lower() not in statements())
    unused = set(statements()) - {name.lower() for name in used}
    assert not unused, f"statements no code runs: {sorted(unused)}"


def test_one_file_per_server_function() -> None:
    files = _files("functions")
    expected = {*procedures.function_names(), "fence", *(s.split("(")[0] for s in introspection.FUNCTION_SIGNATURES)}
    assert set(files) == expected
    for name, text in files.items():
        created = re.findall(r"CREATE OR REPLACE FUNCTION \{s\}\.(\w+)\(", text)
        assert created == [name], name
        assert text.startswith(f"-- {name}: "), name


def test_one_file_per_view() -> None:
    files = _files("views")
    assert set(files) == set(introspection.VIEW_NAMES)
    for name, text in files.items():
        assert re.findall(r"CREATE OR REPLACE VIEW \{s\}\.(\w+) AS", text) == [name], name
        assert text.startswith(f"-- {name}: "), name


def test_constants_written_in_the_sql_agree_with_python() -> None:
    functions = _files("functions")
    assert f"pg_advisory_xact_lock({procedures.OBJECT_LOCK_NAMESPACE}, " in functions["lock_object_key"]
    assert f"pg_advisory_xact_lock({procedures.PROMISE_LOCK_NAMESPACE}, " in functions["lock_promise"]
    for probing in ("submit_invocation", "release_object_key"):
        assert f"pg_advisory_xact_lock_shared({procedures.TARGET_RULES_LOCK_NAMESPACE}, " in functions[probing]
    assert f"pg_advisory_xact_lock({procedures.TARGET_RULES_LOCK_NAMESPACE}, " in _files("queries")["flow"]
    assert functions["submit_invocation"].count(f"pg_advisory_xact_lock({procedures.BACKLOG_LOCK_NAMESPACE}, ") == 2
    assert f"deliver_notification(p_id, {procedures.CANCEL_SIGNAL}, NULL" in functions["cancel_invocation"]
    assert f"<= {procedures.EAGER_STATE_LIMIT}\n" in functions["eager_state"]
    assert f"USING ERRCODE = '{FENCED_SQLSTATE}'" in functions["fence"]


def test_the_ddl_functions_put_every_file_together() -> None:
    ddl = procedures.procedures_sql("restate")
    assert re.findall(r'CREATE OR REPLACE FUNCTION "restate"\.(\w+)\(', ddl) == list(procedures.function_names())
    views = introspection.introspection_sql("restate")
    assert re.findall(r'CREATE OR REPLACE VIEW "restate"\.(\w+) AS', views) == list(introspection.VIEW_NAMES)
    assert "{s}" not in ddl + views
