"""What the database says after a class: the figures of its row, read with SQL.

Everything of a class is found by its tag: object keys are `<tag>-kNN`, deposit ids `<tag>-NNNNN`,
and every invocation of the suite's services carries its deposit id in its input. So classes share
one cluster and one set of processes, and each is judged on its own rows only.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

import psycopg

from bench.stats import percentile

#: The class's invocations (`inv`), both services, with their input decoded.
_INV = """
WITH inv AS (
    SELECT i.*, convert_from(i.input, 'UTF8')::jsonb AS body
      FROM restate.invocation i
     WHERE i.service IN ('FaultAccount', 'FaultTeller')
       AND convert_from(i.input, 'UTF8')::jsonb->>'deposit' LIKE %(like)s
)
"""

STUCK_KINDS = ("task", "inbox", "lock", "notification", "waiter")


@dataclass
class Stuck:
    """Rows that should be gone once every invocation of the class completed."""

    task: int = 0
    inbox: int = 0
    lock: int = 0
    notification: int = 0
    waiter: int = 0  # ingress callers and attached handlers still waiting

    @property
    def total(self) -> int:
        return sum(getattr(self, kind) for kind in STUCK_KINDS)


@dataclass
class Figures:
    """One class's row. `examples` names invocations and keys behind any non-zero count."""

    completed: int = 0
    failed: int = 0
    wrong_keys: int = 0
    overlaps: int = 0
    dup_steps: int = 0
    dup_effects: int = 0
    stuck: Stuck = field(default_factory=Stuck)
    p50_ms: float = float("nan")
    p99_ms: float = float("nan")
    examples: dict[str, list[str]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["stuck"]["total"] = self.stuck.total
        return out


def _like(tag: str) -> dict[str, str]:
    return {"like": f"{tag}-%"}


def stuck_rows(conn: psycopg.Connection[Any], tag: str) -> Stuck:
    params = _like(tag)
    row = conn.execute(_INV + """
        SELECT (SELECT count(*) FROM restate.task t JOIN inv ON inv.id = t.invocation_id),
               (SELECT count(*) FROM restate.inbox b WHERE b.service = 'FaultAccount' AND b.key LIKE %(like)s),
               (SELECT count(*) FROM restate.object_lock l WHERE l.service = 'FaultAccount' AND l.key LIKE %(like)s),
               (SELECT count(*) FROM restate.notification n JOIN inv ON inv.id = n.invocation_id),
               (SELECT count(*) FROM restate.invocation_waiter w
                 WHERE w.invocation_id IN (SELECT id FROM inv) OR w.waiter_id IN (SELECT id FROM inv))
             + (SELECT count(*) FROM inv WHERE inv.status <> 'completed' AND inv.waiter IS NOT NULL)
    """, params).fetchone()
    assert row is not None
    return Stuck(*(int(v) for v in row))


def completed_count(conn: psycopg.Connection[Any], ids: list[str]) -> int:
    row = conn.execute("SELECT count(*) FROM restate.invocation WHERE id = ANY(%s) AND status = 'completed'",
                       (ids,)).fetchone()
    return int(row[0]) if row else 0


def measure(conn: psycopg.Connection[Any], tag: str, accepted_ids: list[str]) -> Figures:
    """Every figure of the class, from the database as it is now."""
    figures = Figures(stuck=stuck_rows(conn, tag))
    _outcomes(conn, accepted_ids, figures)
    _state(conn, tag, figures)
    _overlaps(conn, tag, figures)
    _duplicates(conn, tag, figures)
    return figures


def _outcomes(conn: psycopg.Connection[Any], ids: list[str], figures: Figures) -> None:
    """Completed (successfully), failed, and the latency of the completed ones: from creation
    (or from the start time a delayed send asked for) to completion, by the database's clock."""
    rows = conn.execute(
        "SELECT i.id, i.status, i.result, i.failure_message,"
        "       extract(epoch FROM i.completed_at - coalesce(i.scheduled_start_at, i.created_at)) * 1000,"
        "       t.status, t.attempt, t.lease_owner, t.last_failure"
        "  FROM unnest(%s::text[]) AS a(id) LEFT JOIN restate.invocation i ON i.id = a.id"
        "  LEFT JOIN restate.task t ON t.invocation_id = a.id", (ids,)).fetchall()
    latencies, lost = [], []
    for inv_id, status, result, failure, latency_ms, task_status, attempt, owner, last_failure in rows:
        if status == "completed" and result == "success":
            figures.completed += 1
            latencies.append(float(latency_ms))
        elif status == "completed":
            figures.failed += 1
            lost.append(f"{inv_id}: completed with failure {failure!r}")
        else:
            lost.append(f"{inv_id}: invocation {status or 'missing'}, task {task_status or 'none'}"
                        f" (attempt {attempt}, lease {owner}, last failure {(last_failure or '-')[:120]!r})")
    if lost:
        figures.examples["lost"] = lost[:5]
    figures.p50_ms, figures.p99_ms = percentile(latencies, 50), percentile(latencies, 99)


def _state(conn: psycopg.Connection[Any], tag: str, figures: Figures) -> None:
    """Keys whose final balance is not the sum of their completed deposits, or where two
    deposits returned the same balance."""
    expected: dict[str, int] = defaultdict(int)
    returned: dict[str, list[int]] = defaultdict(list)
    seen_deposits: set[str] = set()
    for key, deposit, amount, output in conn.execute(_INV + """
            SELECT key, body->>'deposit', (body->>'amount')::bigint, convert_from(output, 'UTF8')
              FROM inv WHERE service = 'FaultAccount' AND status = 'completed' AND result = 'success'
             ORDER BY id""", _like(tag)):
        if deposit not in seen_deposits:  # a deposit counts once, however often it ran
            seen_deposits.add(deposit)
            expected[key] += int(amount)
        returned[key].append(int(json.loads(output)))
    unfinished = dict(conn.execute(_INV + """
            SELECT key, count(*) FROM inv WHERE service = 'FaultAccount' AND status <> 'completed' GROUP BY key""",
                                   _like(tag)).fetchall())
    actual = {key: int(json.loads(bytes(value))) for key, value in conn.execute(
        "SELECT key, value FROM restate.state_entry"
        " WHERE service = 'FaultAccount' AND name = 'balance' AND key LIKE %(like)s", _like(tag))}
    wrong = []
    for key in sorted(set(expected) | set(actual)):
        balances = returned.get(key, [])
        repeated = sorted({b for b in balances if balances.count(b) > 1})
        if actual.get(key, 0) != expected.get(key, 0) or repeated:
            wrong.append(f"{key}: balance {actual.get(key, 0)}, completed deposits sum to {expected.get(key, 0)}"
                         + (f", balances returned twice: {repeated[:5]}" if repeated else "")
                         + (f" ({unfinished[key]} deposit(s) of the key not completed)" if key in unfinished else ""))
    figures.wrong_keys = len(wrong)
    if wrong:
        figures.examples["wrong"] = wrong[:5]


def _overlaps(conn: psycopg.Connection[Any], tag: str, figures: Figures) -> None:
    """Pairs of invocations of one key that ran at the same time, by either of two kinds of
    evidence, both written only while an invocation holds its key (so neither can suggest an
    overlap that did not happen):

    - journal: an exclusive invocation's journal entries (from index 1: the input entry may be
      written while it waits in the inbox) and its completion all commit while it holds the key,
      so the spans from its first entry to its completion must be disjoint per key;
    - ledger: each booking row records the balance its invocation read; two invocations of one
      key that read the same balance both read it before either had written.
    """
    spans: dict[str, list[tuple[Any, Any, str]]] = defaultdict(list)
    for key, inv_id, first, last in conn.execute(_INV + """
            SELECT inv.key, inv.id, min(j.appended_at), coalesce(inv.completed_at, max(j.appended_at))
              FROM inv JOIN restate.journal j ON j.invocation_id = inv.id AND j.index >= 1
             WHERE inv.service = 'FaultAccount'
             GROUP BY inv.key, inv.id, inv.completed_at""", _like(tag)):
        spans[key].append((first, last, inv_id))
    pairs: dict[tuple[str, str], str] = {}
    for key, items in spans.items():
        items.sort()
        for i, (start, end, inv_id) in enumerate(items):
            for other_start, other_end, other_id in items[i + 1:]:
                if other_start >= end:
                    break
                pairs[tuple(sorted((inv_id, other_id)))] = (  # type: ignore[index]
                    f"{key}: {inv_id} [{start:%H:%M:%S.%f} .. {end:%H:%M:%S.%f}] overlaps {other_id} "
                    f"[{other_start:%H:%M:%S.%f} .. {other_end:%H:%M:%S.%f}] (journal)")
    for key, before, a, b in conn.execute("""
            SELECT x.key, x.balance_before, x.invocation_id, y.invocation_id
              FROM faults.booking x JOIN faults.booking y
                ON y.key = x.key AND y.balance_before = x.balance_before AND y.invocation_id > x.invocation_id
             WHERE x.deposit LIKE %(like)s""", _like(tag)):
        pairs.setdefault((a, b), f"{key}: {a} and {b} both read balance {before} (ledger)")
    figures.overlaps = len(pairs)
    if pairs:
        figures.examples["overlaps"] = sorted(pairs.values())[:5]


def _duplicates(conn: psycopg.Connection[Any], tag: str, figures: Figures) -> None:
    """Extra rows per deposit: of the database step (must be none) and of the ctx.run effect."""
    for table, attr in (("booking", "dup_steps"), ("effect", "dup_effects")):
        rows = conn.execute(
            f"SELECT deposit, count(*), array_agg(DISTINCT invocation_id), array_agg(pid ORDER BY id)"
            f"  FROM faults.{table} WHERE deposit LIKE %(like)s GROUP BY deposit HAVING count(*) > 1"
            f" ORDER BY deposit", _like(tag)).fetchall()
        setattr(figures, attr, sum(int(n) - 1 for _, n, _, _ in rows))
        if rows:
            figures.examples[attr] = [f"{deposit}: {n} rows, invocations {ids}, by pids {pids}"
                                      for deposit, n, ids, pids in rows[:5]]
