"""Flow-control rules as Restate's admin API and CLI speak of them (`PUT /limits/rules`,
`POST /limits/rules/bulk-delete`, `restate rules set`), checked before they reach the table
(docs/flow-control.md).

A pattern selects scopes and limit keys: `*` (every scope), `scope`, `scope/l1`, `scope/*`,
`scope/l1/l2`, `*/l1`, ... with at most three parts, each `*` or 1 to 36 characters of
[a-zA-Z0-9_.-]. Of the rules matching an invocation, the most specific of each level holds
(an exact part outranks `*`; the scope most, then the limit key's first part, then its second).

A rule may instead target a service or one handler (restate-pg's own): `{"target": {"service":
"Mailer", "handler": "digest"}}`, stored under the pattern `service:Mailer/digest` (`:` is never
part of a scope pattern, so the two cannot be confused). Besides concurrency, rate and backlog it
may hold `concurrency_per_key` (per tenant key: the limit key, else the object key), a default
`priority` and a `debounce_ms` window.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass

from restate_pg.core import hints
from restate_pg.core.hints import work_channel
from restate_pg.store.driver import Store
from restate_pg.store.flow import PreconditionFailed

__all__ = ["FlowRuleBook", "InvalidRule", "PreconditionFailed", "parse_pattern", "render_rule"]

_LIMIT_FIELDS = {"concurrency", "rate", "backlog"}
_TARGET_LIMIT_FIELDS = _LIMIT_FIELDS | {"concurrency_per_key", "priority", "debounce_ms"}
_RATE_FIELDS = {"tokens", "interval_ms", "burst"}
_UPSERT_FIELDS = {"pattern", "target", "limits", "description", "disabled", "precondition"}
TARGET_PREFIX = "service:"  # the pattern of a rule on a service or handler: service:<service>[/<handler>]


class InvalidRule(ValueError):
    """A rule or pattern the rule book refuses (HTTP 400)."""


def _is_part(value: str) -> bool:
    return value == "*" or (1 <= len(value) <= 36 and all(c.isascii() and (c.isalnum() or c in "_.-") for c in value))


def _is_name(value: typing.Any) -> bool:
    return isinstance(value, str) and 1 <= len(value) <= 255 and all(
        c.isascii() and (c.isalnum() or c in "_.$-") for c in value)


def parse_target(target: typing.Any) -> typing.Dict[str, typing.Any]:
    """The columns of a rule on a service (level 3) or one of its handlers (level 4)."""
    if not isinstance(target, dict) or "service" not in target or set(target) - {"service", "handler"}:
        raise InvalidRule("'target' must be {\"service\": S} or {\"service\": S, \"handler\": H}")
    service, handler = target["service"], target.get("handler")
    if not _is_name(service) or (handler is not None and not _is_name(handler)):
        raise InvalidRule("a target's service and handler are 1 to 255 characters of [a-zA-Z0-9_.$-]")
    pattern = TARGET_PREFIX + service + ("" if handler is None else "/" + handler)
    return {"pattern": pattern, "level": 3 if handler is None else 4, "scope_part": service, "l1_part": handler,
            "l2_part": None, "rank": 0}


def parse_pattern(pattern: typing.Any) -> typing.Dict[str, typing.Any]:
    """The columns of a pattern: its level, parts and Restate's rank (exact parts as bits)."""
    if isinstance(pattern, str) and pattern.startswith(TARGET_PREFIX):
        service, _, handler = pattern[len(TARGET_PREFIX):].partition("/")
        return parse_target({"service": service, **({"handler": handler} if handler else {})})
    if not isinstance(pattern, str) or not pattern.strip():
        raise InvalidRule("a rule's pattern must be a non-empty string such as '*', 'checkout' or 'checkout/*'")
    parts = pattern.strip().rstrip("/").split("/")
    if len(parts) > 3:
        raise InvalidRule(f"invalid pattern {pattern!r}: too many parts (at most scope/l1/l2)")
    if not all(_is_part(p) for p in parts):
        raise InvalidRule(f"invalid pattern {pattern!r}: each part is '*' or 1 to 36 characters of [a-zA-Z0-9_.-]")
    rank = sum(1 << (2 - i) for i, part in enumerate(parts) if part != "*")
    padded = parts + [None] * (3 - len(parts))
    return {"pattern": "/".join(parts), "level": len(parts) - 1, "scope_part": padded[0], "l1_part": padded[1],
            "l2_part": padded[2], "rank": rank}


def _positive(name: str, value: typing.Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1 or value > 2**31 - 1:
        raise InvalidRule(f"'{name}' must be a positive integer")
    return value


def _limits(limits: typing.Any, target: bool) -> typing.Dict[str, typing.Any]:
    if limits is None:
        limits = {}
    if not isinstance(limits, dict):
        raise InvalidRule("'limits' must be an object such as {\"concurrency\": 10}")
    allowed = _TARGET_LIMIT_FIELDS if target else _LIMIT_FIELDS
    unknown = set(limits) - allowed
    if unknown:
        only = " (concurrency_per_key, priority and debounce_ms are limits of service and handler rules)" if not target else ""
        raise InvalidRule(f"unknown limit(s) {', '.join(sorted(unknown))} (expected {', '.join(sorted(allowed))}){only}")
    out: typing.Dict[str, typing.Any] = {"concurrency": None, "rate": None, "rate_interval_ms": None, "burst": None, "backlog": None,
                                         "concurrency_per_key": None, "priority": None, "debounce_ms": None}
    for name in ("concurrency", "backlog", "concurrency_per_key", "debounce_ms"):
        if limits.get(name) is not None:
            out[name] = _positive(f"limits.{name}", limits[name])
    priority = limits.get("priority")
    if priority is not None:
        if not isinstance(priority, int) or isinstance(priority, bool) or not -1000 <= priority <= 1000:
            raise InvalidRule("'limits.priority' must be an integer from -1000 to 1000")
        out["priority"] = priority
    rate = limits.get("rate")
    if rate is not None:
        if not isinstance(rate, dict) or set(rate) - _RATE_FIELDS or "tokens" not in rate:
            raise InvalidRule("'limits.rate' must be {\"tokens\": N, \"interval_ms\": M, \"burst\": B} (interval 1000 ms and burst N by default)")
        out["rate"] = _positive("limits.rate.tokens", rate["tokens"])
        out["rate_interval_ms"] = _positive("limits.rate.interval_ms", rate.get("interval_ms", 1000))
        out["burst"] = _positive("limits.rate.burst", rate.get("burst", out["rate"]))
    return out


def rule_row(entry: typing.Any) -> typing.Dict[str, typing.Any]:
    """One entry of `PUT /limits/rules` as the row `upsert_flow_rule` writes (with its precondition:
    `expected_version`, -1 for "must not exist")."""
    if not isinstance(entry, dict):
        raise InvalidRule("each rule must be an object with 'pattern' and 'limits'")
    unknown = set(entry) - _UPSERT_FIELDS
    if unknown:
        raise InvalidRule(f"unknown field(s) {', '.join(sorted(unknown))} (expected {', '.join(sorted(_UPSERT_FIELDS))})")
    description = entry.get("description")
    if description is not None and not isinstance(description, str):
        raise InvalidRule("'description' must be a string")
    disabled = entry.get("disabled", False)
    if not isinstance(disabled, bool):
        raise InvalidRule("'disabled' must be true or false")
    if ("target" in entry) == ("pattern" in entry):
        raise InvalidRule("a rule has either a 'pattern' (of scopes) or a 'target' (a service or handler)")
    columns = parse_target(entry["target"]) if "target" in entry else parse_pattern(entry["pattern"])
    return {**columns, **_limits(entry.get("limits"), columns["level"] >= 3), "description": description,
            "disabled": disabled, "expected_version": _precondition(entry.get("precondition"))}


def _precondition(value: typing.Any) -> typing.Optional[int]:
    """Restate's precondition: none, `{"type": "does_not_exist"}` or `{"type": "matches", "version": v}`."""
    if value is None or value == {"type": "none"}:
        return None
    if isinstance(value, dict) and value.get("type") == "does_not_exist" and len(value) == 1:
        return -1
    if isinstance(value, dict) and value.get("type") == "matches" and set(value) == {"type", "version"}:
        return _positive("precondition.version", value["version"])
    raise InvalidRule("'precondition' must be {\"type\": \"none\"}, {\"type\": \"does_not_exist\"} or {\"type\": \"matches\", \"version\": N}")


def render_rule(row: typing.Mapping[str, typing.Any]) -> typing.Dict[str, typing.Any]:
    """A rule as Restate's `RuleResponse` (limits beyond concurrency are restate-pg's)."""
    limits: typing.Dict[str, typing.Any] = {}
    if row["concurrency"] is not None:
        limits["concurrency"] = row["concurrency"]
    if row["rate"] is not None:
        limits["rate"] = {"tokens": row["rate"], "interval_ms": row["rate_interval_ms"], "burst": row["burst"]}
    if row["backlog"] is not None:
        limits["backlog"] = row["backlog"]
    for name in ("concurrency_per_key", "priority", "debounce_ms"):
        if row.get(name) is not None:
            limits[name] = row[name]
    rendered: typing.Dict[str, typing.Any] = {"pattern": row["pattern"], "limits": limits}
    if row.get("level", 0) >= 3:
        rendered["target"] = {"service": row["scope_part"], **({"handler": row["l1_part"]} if row["level"] == 4 else {})}
    if row["description"] is not None:
        rendered["description"] = row["description"]
    rendered.update(disabled=row["disabled"], version=row["version"],
                    last_modified_millis_since_epoch=row["last_modified_millis"])
    return rendered


@dataclass
class FlowRuleBook:
    """The rule book of one schema: list, upsert and delete, each batch atomic."""

    store: Store

    async def list(self) -> typing.List[typing.Dict[str, typing.Any]]:
        return [render_rule(row) for row in await self.store.list_flow_rules()]

    async def upsert(self, entries: typing.Sequence[typing.Any]) -> typing.List[typing.Dict[str, typing.Any]]:
        """Apply a batch of upserts (all or none); returns the rules as stored now."""
        rows = [rule_row(entry) for entry in entries]
        await self.store.upsert_flow_rules(rows)
        await self._changed()
        stored = {rule["pattern"]: rule for rule in await self.list()}
        return [stored[row["pattern"]] for row in rows if row["pattern"] in stored]

    async def delete(self, entries: typing.Sequence[typing.Any]) -> typing.List[str]:
        """Delete a batch (all or none when versions are given); returns the patterns removed."""
        rows = []
        for entry in entries:
            if not isinstance(entry, dict) or set(entry) - {"pattern", "target", "expected_version"}:
                raise InvalidRule("each entry must be {\"pattern\" or \"target\": ..., \"expected_version\"?: N}")
            version = entry.get("expected_version")
            columns = parse_target(entry["target"]) if "target" in entry else parse_pattern(entry.get("pattern"))
            rows.append({"pattern": columns["pattern"],
                         "expected_version": None if version is None else _positive("expected_version", version)})
        deleted = await self.store.delete_flow_rules(rows)
        await self._changed()
        return deleted

    async def _changed(self) -> None:
        """Queued work may be admitted now (a limit went up or away): workers look again."""
        await self.store.notify(work_channel(self.store.schema), hints.WORK)
        # workers re-read which services rules name (their submitters then no longer start them at once)
        await self.store.notify(work_channel(self.store.schema), hints.SERVICES_CHANGED)
