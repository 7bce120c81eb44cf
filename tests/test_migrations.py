"""The alembic migrations: what they create, that they can be re-run, undone and run concurrently,
and that the database they leave agrees with the store: `restate_pg.store.schema`'s tables and the
functions and views of `restate_pg/store/sql/` (tests/test_frozen_migrations.py keeps the
revisions' own SQL frozen)."""

from __future__ import annotations

import importlib.resources
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from psycopg import sql

from restate_pg.errors import DatabaseUnavailable, RestatePgError, SchemaNotMigrated
from restate_pg.store import schema as schema_module
from restate_pg.store.database import ConfigurationError, to_sqlalchemy_url
from restate_pg.store.migrate import (
    MigrationError,
    check_migrated,
    current_revision,
    downgrade,
    head_revision,
    upgrade,
)
from restate_pg.store.introspection import FUNCTION_SIGNATURES as INTROSPECTION_FUNCTIONS
from restate_pg.store.introspection import VIEW_NAMES, introspection_sql
from restate_pg.store.procedures import FUNCTION_SIGNATURES, procedures_sql

TABLES = {
    "invocation", "task", "journal", "notification", "state_entry", "object_lock", "inbox", "worker", "promise", "promise_waiter",
    "invocation_waiter", "deployment", "service", "cron_job", "flow_rule", "flow_counter",
}


@pytest.fixture
def fresh_schema(database_url: str) -> Iterator[str]:
    """A schema name nothing uses yet; the schema is dropped after the test."""
    name = f"test_{secrets.token_hex(4)}"
    yield name
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


def _tables(url: str, schema: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s", [schema])
        return {row[0] for row in rows}


def _function_source(url: str, schema: str, name: str) -> str | None:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT p.prosrc FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
            " WHERE n.nspname = %s AND p.proname = %s",
            [schema, name],
        ).fetchone()
    return row[0] if row else None


def _fence_source(url: str, schema: str) -> str | None:
    return _function_source(url, schema, "fence")


def test_upgrade_creates_every_table_and_the_fence_function(database_url: str) -> None:
    assert _tables(database_url, "restate") == TABLES | {"alembic_version"}
    assert _fence_source(database_url, "restate") is not None
    assert current_revision(database_url, "restate") == head_revision() == "0020"


def test_task_has_its_storage_parameters(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT reloptions FROM pg_class WHERE oid = 'restate.task'::regclass"
        ).fetchone()
    assert row is not None
    assert set(row[0]) == {
        "fillfactor=70",
        "autovacuum_vacuum_scale_factor=0.01",
        "autovacuum_vacuum_cost_delay=0",
    }


def test_fence_admits_the_lease_holder_only(database_url: str, fresh_schema: str) -> None:
    upgrade(database_url, fresh_schema)
    fence = sql.SQL("SELECT {}.fence(%s, %s, %s)").format(sql.Identifier(fresh_schema))
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL(
                "INSERT INTO {}.task (invocation_id, service, status, run_at, lease_owner, epoch)"
                " VALUES ('inv_1', 'Greeter', 'running', now(), 'worker-a', 3)"
            ).format(sql.Identifier(fresh_schema))
        )
        conn.execute(fence, ["inv_1", "worker-a", 3])
        for invocation, owner, epoch in [
            ("inv_1", "worker-a", 2),
            ("inv_1", "worker-b", 3),
            ("inv_2", "worker-a", 3),
        ]:
            with pytest.raises(psycopg.Error) as raised:
                conn.execute(fence, [invocation, owner, epoch])
            assert raised.value.sqlstate == schema_module.FENCED_SQLSTATE


def test_upgrade_is_idempotent(database_url: str, fresh_schema: str) -> None:
    upgrade(database_url, fresh_schema)
    upgrade(database_url, fresh_schema)
    assert current_revision(database_url, fresh_schema) == head_revision()
    assert _tables(database_url, fresh_schema) == TABLES | {"alembic_version"}


def test_concurrent_upgrades_take_turns(database_url: str, fresh_schema: str) -> None:
    # Without the advisory lock, racing CREATE SCHEMA / CREATE TABLE statements fail with
    # unique violations on the catalogs.
    with ThreadPoolExecutor(max_workers=4) as pool:
        for future in [pool.submit(upgrade, database_url, fresh_schema) for _ in range(4)]:
            future.result()
    assert current_revision(database_url, fresh_schema) == head_revision()


def test_downgrade_to_base_then_upgrade_again(database_url: str, fresh_schema: str) -> None:
    upgrade(database_url, fresh_schema)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("INSERT INTO {}.state_entry VALUES ('Counter', 'a', 'count', '1')").format(
                sql.Identifier(fresh_schema)
            )
        )

    downgrade(database_url, fresh_schema, revision="base")
    assert _tables(database_url, fresh_schema) == {"alembic_version"}
    assert _fence_source(database_url, fresh_schema) is None
    assert current_revision(database_url, fresh_schema) is None

    upgrade(database_url, fresh_schema)
    assert _tables(database_url, fresh_schema) == TABLES | {"alembic_version"}
    with psycopg.connect(database_url) as conn:
        count = conn.execute(
            sql.SQL("SELECT count(*) FROM {}.state_entry").format(sql.Identifier(fresh_schema))
        ).fetchone()
    assert count == (0,)


def test_check_migrated_passes_on_a_migrated_schema(database_url: str) -> None:
    check_migrated(database_url, "restate")


def test_check_migrated_raises_on_an_unmigrated_schema(database_url: str, fresh_schema: str) -> None:
    with pytest.raises(SchemaNotMigrated) as raised:
        check_migrated(database_url, fresh_schema)
    message = str(raised.value)
    assert isinstance(raised.value, RestatePgError)
    assert f"'{fresh_schema}' is not migrated" in message
    assert f"restate-pg migrate --schema {fresh_schema}" in message
    assert "\n" not in message


def test_check_migrated_raises_on_a_revision_it_does_not_know(
    database_url: str, fresh_schema: str
) -> None:
    upgrade(database_url, fresh_schema)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("UPDATE {}.alembic_version SET version_num = '9999'").format(
                sql.Identifier(fresh_schema)
            )
        )
    with pytest.raises(SchemaNotMigrated, match="newer restate-pg"):
        check_migrated(database_url, fresh_schema)


def test_custom_schema_name(database_url: str, fresh_schema: str) -> None:
    upgrade(database_url, fresh_schema)
    assert _tables(database_url, fresh_schema) == TABLES | {"alembic_version"}
    assert f'"{fresh_schema}".task' in (_fence_source(database_url, fresh_schema) or "")
    check_migrated(database_url, fresh_schema)
    # The default schema is untouched by migrating another one.
    assert current_revision(database_url, "restate") == head_revision()


@pytest.mark.parametrize("name", ["Restate", "1st", "pg_restate", "a-b", 'x"; DROP TABLE y; --', ""])
def test_unusable_schema_names_are_refused(name: str) -> None:
    # Refused before connecting: the (unreachable) database is never tried.
    with pytest.raises(ConfigurationError, match="invalid schema name"):
        upgrade("postgresql://postgres@127.0.0.1:1/nothing", name)


def test_unknown_revision_is_a_clear_error(database_url: str, fresh_schema: str) -> None:
    with pytest.raises(MigrationError, match="Can't locate revision"):
        upgrade(database_url, fresh_schema, revision="nosuchrevision")


def test_unreachable_database() -> None:
    with pytest.raises(DatabaseUnavailable, match=r"127\.0\.0\.1:1: "):
        upgrade("postgresql://postgres@127.0.0.1:1/nothing")


def test_migrations_agree_with_schema_module(database_url: str) -> None:
    """A change to schema.py without a matching revision fails here."""
    engine = sa.create_engine(to_sqlalchemy_url(database_url), poolclass=sa.pool.NullPool)

    def include_name(name: str | None, type_: str, parent_names: object) -> bool:
        if type_ == "schema":
            return name == "restate"
        return not (type_ == "table" and name == "alembic_version")

    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn,
                opts={
                    "include_schemas": True,
                    "include_name": include_name,
                    "compare_type": True,
                    "compare_server_default": True,
                },
            )
            differences = compare_metadata(context, schema_module.build_metadata("restate"))
    finally:
        engine.dispose()
    assert differences == []


def test_fence_function_agrees_with_schema_module(database_url: str) -> None:
    body = re.search(r"\$\$(.*)\$\$", schema_module.fence_function_sql("restate"), re.DOTALL)
    assert body is not None
    assert _fence_source(database_url, "restate") == body.group(1)


def test_write_path_functions_agree_with_procedures_module(database_url: str) -> None:
    defined = dict(
        re.findall(r'CREATE OR REPLACE FUNCTION "restate"\.(\w+)\(.*?\$\$(.*?)\$\$', procedures_sql("restate"), re.DOTALL)
    )
    assert sorted(defined) == sorted(sig.split("(")[0] for sig in FUNCTION_SIGNATURES)
    for name, body in defined.items():
        assert _function_source(database_url, "restate", name) == body, name


def test_the_database_has_exactly_the_functions_the_store_defines(database_url: str) -> None:
    """The head revision created every function of store/sql/functions/ with the signature the
    store calls, and left no other (such as the overload a changed signature would add)."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT p.proname || '(' || oidvectortypes(p.proargtypes) || ')' FROM pg_proc p"
            " JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'restate'"
        ).fetchall()
    expected = {*FUNCTION_SIGNATURES, *INTROSPECTION_FUNCTIONS, "fence(text, text, integer)"}
    assert {row[0] for row in rows} == expected


def test_downgrade_drops_the_write_path_functions(database_url: str, fresh_schema: str) -> None:
    upgrade(database_url, fresh_schema)
    assert _function_source(database_url, fresh_schema, "apply") is not None
    downgrade(database_url, fresh_schema, revision="0001")
    assert all(_function_source(database_url, fresh_schema, sig.split("(")[0]) is None for sig in FUNCTION_SIGNATURES)
    assert _fence_source(database_url, fresh_schema) is not None


def _views(url: str, schema: str) -> dict[str, str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT viewname, definition FROM pg_views WHERE schemaname = %s", [schema]
        ).fetchall()
    return dict(rows)


def test_introspection_views_agree_with_introspection_module(database_url: str, fresh_schema: str) -> None:
    """A change to introspection.py without a revision that re-creates the views fails here."""
    upgrade(database_url, fresh_schema)
    migrated = _views(database_url, fresh_schema)
    assert sorted(migrated) == sorted(VIEW_NAMES)
    helper = _function_source(database_url, fresh_schema, "bytes_as_utf8")
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(introspection_sql(fresh_schema).encode())
    assert _views(database_url, fresh_schema) == migrated
    assert _function_source(database_url, fresh_schema, "bytes_as_utf8") == helper


def test_downgrade_from_introspection_restores_the_state_table(database_url: str, fresh_schema: str) -> None:
    upgrade(database_url, fresh_schema)
    downgrade(database_url, fresh_schema, revision="0004")
    assert _views(database_url, fresh_schema) == {}
    assert "state" in _tables(database_url, fresh_schema)
    with psycopg.connect(database_url, autocommit=True) as conn:  # the functions use the old name again
        conn.execute(
            sql.SQL("INSERT INTO {}.state VALUES ('Counter', 'a', 'count', '1')").format(sql.Identifier(fresh_schema))
        )
        state = conn.execute(
            sql.SQL("SELECT {}.eager_state('Counter', 'a')").format(sql.Identifier(fresh_schema))
        ).fetchone()
    assert state == ({"count": "MQ=="},)
    upgrade(database_url, fresh_schema)
    with psycopg.connect(database_url) as conn:
        values = conn.execute(
            sql.SQL("SELECT service_name, service_key, key, value_utf8 FROM {}.state").format(
                sql.Identifier(fresh_schema)
            )
        ).fetchall()
    assert values == [("Counter", "a", "count", "1")]


def _alembic_ini() -> Path:
    return Path(str(importlib.resources.files("restate_pg.migrations").joinpath("alembic.ini")))


@pytest.mark.slow
def test_alembic_command_line_with_the_packaged_ini(database_url: str, fresh_schema: str) -> None:
    alembic = [sys.executable, "-m", "alembic", "-c", str(_alembic_ini())]
    x_args = ["-x", f"url={database_url}", "-x", f"schema={fresh_schema}"]
    done = subprocess.run(
        [*alembic, *x_args, "upgrade", "head"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert current_revision(database_url, fresh_schema) == head_revision()

    offline = subprocess.run(
        [*alembic, "-x", "schema=offline_only", "upgrade", "head", "--sql"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert offline.returncode == 0, offline.stderr
    assert "CREATE TABLE offline_only.task" in offline.stdout
    assert "attempt % of invocation %" in offline.stdout  # not doubled into %%
