"""A table outside restate-pg's schema where test handlers record their side effects.

Handlers write to it from inside `ctx.run` closures, so a test can count how often a side effect
really happened, whichever process ran it.
"""

from __future__ import annotations

import os
import typing

import psycopg

DSN_ENV = "RESTATE_PG_TEST_DSN"

DDL = """
CREATE TABLE IF NOT EXISTS public.side_effect (
    id bigserial PRIMARY KEY,
    tag text NOT NULL,
    step text NOT NULL,
    pid integer NOT NULL,
    at timestamptz NOT NULL DEFAULT clock_timestamp()
)
"""


def dsn() -> str:
    return os.environ[DSN_ENV]


def record(tag: str, step: str) -> None:
    """Record one side effect (synchronous: ctx.run runs it in a thread)."""
    with psycopg.connect(dsn(), autocommit=True) as conn:
        conn.execute("INSERT INTO public.side_effect (tag, step, pid) VALUES (%s, %s, %s)", (tag, step, os.getpid()))


def count(tag: str, step: typing.Optional[str] = None) -> int:
    with psycopg.connect(dsn(), autocommit=True) as conn:
        if step is None:
            row = conn.execute("SELECT count(*) FROM public.side_effect WHERE tag = %s", (tag,)).fetchone()
        else:
            row = conn.execute("SELECT count(*) FROM public.side_effect WHERE tag = %s AND step = %s", (tag, step)).fetchone()
        return row[0]


def steps(tag: str) -> typing.List[str]:
    with psycopg.connect(dsn(), autocommit=True) as conn:
        return [r[0] for r in conn.execute("SELECT step FROM public.side_effect WHERE tag = %s ORDER BY id", (tag,))]


def reset() -> None:
    with psycopg.connect(dsn(), autocommit=True) as conn:
        conn.execute(DDL)
        conn.execute("TRUNCATE public.side_effect")
