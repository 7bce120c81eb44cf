"""Database URL handling, reachability checks and the embedded PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from restate_pg.errors import DatabaseUnavailable
from restate_pg.store.database import (
    ConfigurationError,
    check_reachable,
    describe_target,
    resolve_database_url,
    to_psycopg_conninfo,
    to_sqlalchemy_url,
)


def test_resolve_prefers_the_explicit_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://env/db")
    assert resolve_database_url("postgresql://explicit/db") == "postgresql://explicit/db"
    assert resolve_database_url(None) == "postgresql://env/db"
    assert resolve_database_url("") == "postgresql://env/db"
    monkeypatch.setenv("DATABASE_URL", "  ")
    assert resolve_database_url(None) is None
    monkeypatch.delenv("DATABASE_URL")
    assert resolve_database_url(None) is None


@pytest.mark.parametrize(
    ("url", "psycopg_form", "sqlalchemy_form"),
    [
        ("postgresql://u:p%40ss@h:5433/db", "postgresql://u:p%40ss@h:5433/db", "postgresql+psycopg://u:p%40ss@h:5433/db"),
        ("postgres://u@h/db", "postgresql://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgresql+psycopg://u@h/db?sslmode=require", "postgresql://u@h/db?sslmode=require", "postgresql+psycopg://u@h/db?sslmode=require"),
        ("POSTGRESQL+PSYCOPG2://u@h/db", "postgresql://u@h/db", "postgresql+psycopg://u@h/db"),
    ],
)
def test_url_forms(url: str, psycopg_form: str, sqlalchemy_form: str) -> None:
    assert to_psycopg_conninfo(url) == psycopg_form
    assert to_sqlalchemy_url(url) == sqlalchemy_form


def test_libpq_keyword_strings() -> None:
    from sqlalchemy.engine import make_url

    assert to_psycopg_conninfo("host=/tmp dbname=x user=me") == "host=/tmp dbname=x user=me"
    converted = make_url(to_sqlalchemy_url("host=/tmp dbname=x user=me"))
    assert converted.drivername == "postgresql+psycopg"
    assert dict(converted.query) == {"host": "/tmp", "dbname": "x", "user": "me"}


@pytest.mark.parametrize("url", ["mysql://u@h/db", "sqlite:///x.db", "   "])
def test_urls_that_are_not_postgresql(url: str) -> None:
    with pytest.raises(ConfigurationError):
        to_psycopg_conninfo(url)


def test_describe_target_never_shows_the_password() -> None:
    described = describe_target("postgresql://me:secret@db.example:6543/app")
    assert described == 'database "app" on db.example:6543'
    described = describe_target("postgresql://me@/app?host=/run/pg")
    assert described == 'database "app" on the socket in /run/pg'


def test_check_reachable_accepts_a_running_server(database_url: str) -> None:
    check_reachable(database_url)


def test_check_reachable_explains_a_refused_connection() -> None:
    with pytest.raises(DatabaseUnavailable) as raised:
        check_reachable("postgresql://postgres@127.0.0.1:1/x", timeout=2)
    assert str(raised.value) == 'cannot connect to database "x" on 127.0.0.1:1: Connection refused'


def test_check_reachable_explains_a_missing_database(database_url: str) -> None:
    missing = psycopg.conninfo.make_conninfo(database_url, dbname="restate_pg_no_such_db")
    with pytest.raises(DatabaseUnavailable, match='database "restate_pg_no_such_db" does not exist'):
        check_reachable(missing)


def test_embedded_postgres(tmp_path: Path) -> None:
    from restate_pg.store.embedded import start_embedded

    with start_embedded(tmp_path / "pgdata") as server:
        assert server.data_dir == (tmp_path / "pgdata").resolve()
        with psycopg.connect(server.url) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(server.url, connect_timeout=2)
