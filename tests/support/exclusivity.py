"""Watch, from PostgreSQL's side, that an exclusive handler only ever runs while it holds its key.

A trigger on `task` records every lease given to an invocation of an exclusive handler whose
object key (`object_lock`) it does not hold at that moment, whichever statement gave the lease
(a claim, a submission started at once, a key handed over). The check runs inside the very
transaction that starts the attempt, so it sees exactly what that transaction sees.
"""

from __future__ import annotations

import typing

import psycopg

INSTALL = """
CREATE TABLE IF NOT EXISTS public.exclusivity_violation (
    invocation_id text NOT NULL,
    lease_owner text NOT NULL,
    epoch integer NOT NULL,
    holder text,
    at timestamptz NOT NULL DEFAULT clock_timestamp()
);
TRUNCATE public.exclusivity_violation;
CREATE TABLE IF NOT EXISTS public.exclusive_lease (
    invocation_id text NOT NULL,
    epoch integer NOT NULL
);
TRUNCATE public.exclusive_lease;
CREATE OR REPLACE FUNCTION public.check_exclusive_lease() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_inv record;
    v_holder text;
BEGIN
    SELECT service, key, handler_ty INTO v_inv FROM restate.invocation WHERE id = NEW.invocation_id;
    IF v_inv.handler_ty IS DISTINCT FROM 'exclusive' THEN
        RETURN NEW;
    END IF;
    INSERT INTO public.exclusive_lease VALUES (NEW.invocation_id, NEW.epoch);
    SELECT invocation_id INTO v_holder FROM restate.object_lock WHERE service = v_inv.service AND key = v_inv.key;
    IF v_holder IS DISTINCT FROM NEW.invocation_id THEN
        INSERT INTO public.exclusivity_violation (invocation_id, lease_owner, epoch, holder)
        VALUES (NEW.invocation_id, NEW.lease_owner, NEW.epoch, v_holder);
    END IF;
    RETURN NEW;
END
$$;
DROP TRIGGER IF EXISTS exclusive_lease_check ON restate.task;
CREATE TRIGGER exclusive_lease_check AFTER INSERT OR UPDATE OF lease_owner ON restate.task
    FOR EACH ROW WHEN (NEW.lease_owner IS NOT NULL) EXECUTE FUNCTION public.check_exclusive_lease();
"""

UNINSTALL = """
DROP TRIGGER IF EXISTS exclusive_lease_check ON restate.task;
DROP FUNCTION IF EXISTS public.check_exclusive_lease();
DROP TABLE IF EXISTS public.exclusivity_violation;
DROP TABLE IF EXISTS public.exclusive_lease;
"""


def install(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(INSTALL)


def uninstall(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(UNINSTALL)


def violations(dsn: str) -> typing.List[typing.Tuple[str, str, int, typing.Optional[str]]]:
    """(invocation, lease owner, epoch, the key's holder at that moment) of every lease given
    to an exclusive invocation that did not hold its key."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(
            "SELECT invocation_id, lease_owner, epoch, holder FROM public.exclusivity_violation ORDER BY at"
        ).fetchall()


def leases(dsn: str, invocation_id: str) -> int:
    """How many leases (attempts) the invocation of an exclusive handler was given."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM public.exclusive_lease WHERE invocation_id = %s", (invocation_id,)).fetchone()
        return int(row[0]) if row else 0
