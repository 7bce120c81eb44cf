"""Awakeable and promise values checked against the type their waiter declared.

Why: `ctx.awakeable(type_hint=T)` and `ctx.promise(name, type_hint=T)` declare what the waiter can
take, but the value comes from elsewhere (the ingress, a client, another handler). A value the
waiter cannot take fails the waiting attempt, which is retried for as long as its retry policy
allows and can never succeed. Restate does exactly that; restate-pg refuses the value where it
arrives instead (a deliberate difference, see the README), as it does handler input
(`api/inputs.py`).

The declared type travels as data, not code: its JSON schema (the one `api/metadata.py` publishes
for handler types) is journaled with the waiter's command, and the resolving side, which only has
the id or the promise's name, reads it back and validates the value with `jsonschema`. Only the
default JSON serde with a type hint declares a schema: a custom serde decodes whatever it likes,
and an untyped waiter takes any JSON.
"""

from __future__ import annotations

import functools
import json
import typing

from restate_pg.api.inputs import InputRejected, _first_line, _is_untyped
from restate_pg.api.metadata import json_schema
from restate_pg.api.serde import DefaultSerde, Serde, json_loads

__all__ = ["Schema", "check_completion", "declared_schema"]

Schema = typing.Dict[str, typing.Any]


def declared_schema(serde: Serde[typing.Any], type_hint: typing.Any) -> typing.Optional[Schema]:
    """The JSON schema a waiter declares with `type_hint` under `serde`, or None if it declares none."""
    if not isinstance(serde, DefaultSerde) or type_hint is None or _is_untyped(type_hint):
        return None
    schema = json_schema(type_hint)
    return schema or None  # {}: pydantic found nothing to check


def check_completion(value: typing.Optional[bytes], schema: typing.Optional[Schema]) -> None:
    """InputRejected unless `value` (JSON; empty stands for null, as the JSON serde reads it)
    is valid under `schema`; no schema: anything goes."""
    if not schema:
        return
    try:
        decoded = json_loads(value) if value else None
    except ValueError as exc:
        raise InputRejected(f"the value is not valid JSON: {_first_line(exc)}") from None
    from jsonschema.exceptions import best_match

    try:
        error = best_match(_validator(json.dumps(schema, sort_keys=True)).iter_errors(decoded))
    except Exception:  # a schema jsonschema cannot use (an unresolvable $ref...): it checks nothing
        return
    if error is not None:
        where = ".".join(str(part) for part in error.absolute_path) or "value"
        raise InputRejected(f"the value is not a valid {_title(schema)}: {where}: {error.message}")


@functools.lru_cache(maxsize=256)
def _validator(schema_text: str) -> typing.Any:
    """A validator per distinct schema (parsing and checking a schema costs more than validating)."""
    from jsonschema import validators

    schema = json.loads(schema_text)
    cls = validators.validator_for(schema, default=validators.Draft202012Validator)
    return cls(schema)


def _title(schema: Schema) -> str:
    """What the declared type is called: its schema's title (a model's name), else its JSON type."""
    title = schema.get("title") or schema.get("type")
    return str(title) if title else "value of the declared type"
