"""A handler's input checked against its declared type before an invocation exists.

Why: an invocation whose input its handler cannot take fails in the handler (a TypeError, a
JSONDecodeError), and that failure is retried under the retry policy, for about an hour by
default; an exclusive handler's key stays locked all that time, so every later call to it queues
behind input that can never succeed. Restate accepts such input and retries; restate-pg refuses
it at the door (a deliberate difference, see the README), with the JSON schema the service
publishes (`api/metadata.py`) as the contract: a handler annotated `int` takes a JSON integer.

What is checked, per the handler's serde:
- the default JSON serde with a plain annotation (`int`, `str`, `list[int]`, `Optional[int]`...):
  the handler receives the decoded JSON as is, so it must already have that type; pydantic
  validates it in strict mode (no `"5"` for `5`);
- a pydantic model or dataclass (possibly inside `Optional`/`list`): the serde's own decoding,
  which is what the handler receives;
- no annotation, `Any`, `object`, `bytes`: any JSON (any bytes for a bytes serde);
- any other serde: its `deserialize` must succeed.
A body that is not JSON under a JSON content type is refused whatever the serde.

The checker is built once per handler (`Handler.input_check`, cached), not per request.
"""

from __future__ import annotations

import dataclasses
import typing

from restate_pg.api.serde import (
    BytesSerde, DefaultSerde, JsonSerde, PydanticJsonSerde, Serde, _needs_validation, json_loads,
)
from restate_pg.core.errors import RestatePgError

__all__ = ["InputRejected", "InputCheck", "accepts_none", "check_json_body", "is_json_content_type"]

#: Annotations that say nothing about the value: any JSON will do.
_UNTYPED = (None, typing.Any, object, bytes, bytearray, memoryview)


class InputRejected(RestatePgError, ValueError):
    """A handler input (or an awakeable value) its receiver could never take: the ingress answers
    it with 400, the clients raise it (a ValueError, like their other argument errors)."""

    def __init__(self, reason: str) -> None:
        self.message = f"input validation error: {reason}"
        super().__init__(self.message)


def accepts_none(hint: typing.Any) -> bool:
    """Whether a handler whose input is annotated `hint` may receive None (an empty body)."""
    if hint is None or hint is typing.Any or hint is object or hint is type(None):
        return True
    return type(None) in typing.get_args(hint)


def is_json_content_type(content_type: typing.Optional[str]) -> bool:
    """`application/json` or a `+json` type (`application/problem+json`), parameters ignored."""
    if content_type is None:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def check_json_body(body: bytes) -> None:
    """InputRejected unless `body` is one JSON document (empty stands for None, as in restate-sdk)."""
    if not body:
        return
    try:
        json_loads(body)
    except ValueError as exc:
        raise InputRejected(f"the body is not valid JSON: {_first_line(exc)}") from None


@dataclasses.dataclass(frozen=True)
class InputCheck:
    """How one handler's input is checked; `parses_json` says whether `check` parses JSON already
    (else a JSON content type needs `check_json_body` as well)."""

    check: typing.Callable[[bytes], None]
    parses_json: bool

    @classmethod
    def build(cls, hint: typing.Any, serde: Serde[typing.Any]) -> "InputCheck":
        if isinstance(serde, BytesSerde):
            return cls(_accept, False)
        if isinstance(serde, PydanticJsonSerde) or (isinstance(serde, DefaultSerde) and _needs_validation_safely(hint)):
            return cls(_decoding(serde, _type_name(hint)), True)
        if isinstance(serde, (DefaultSerde, JsonSerde)):
            adapter = None if _is_untyped(hint) else _strict_adapter(hint)
            if adapter is None:
                return cls(check_json_body, True)
            return cls(_strictly(adapter, _type_name(hint)), True)
        return cls(_decoding(serde, None), False)

    def __call__(self, body: bytes, content_type: typing.Optional[str] = "application/json") -> None:
        """InputRejected unless the handler can take `body` (not empty: empty is None, checked apart)."""
        if not self.parses_json and is_json_content_type(content_type):
            check_json_body(body)
        self.check(body)


def _accept(body: bytes) -> None:
    return None


def _is_untyped(hint: typing.Any) -> bool:
    return any(hint is untyped for untyped in _UNTYPED) or isinstance(hint, typing.TypeVar)


def _needs_validation_safely(hint: typing.Any) -> bool:
    try:
        return hint is not None and _needs_validation(hint)
    except Exception:  # an annotation typing cannot take apart: no model in it that we can see
        return False


def _strict_adapter(hint: typing.Any) -> typing.Any:
    """pydantic's validator for `hint`, or None for an annotation pydantic cannot describe (then
    the service publishes no schema for it either, and any JSON is taken)."""
    try:
        from pydantic import TypeAdapter

        return TypeAdapter(hint)
    except Exception:
        return None


def _strictly(adapter: typing.Any, type_name: str) -> typing.Callable[[bytes], None]:
    def check(body: bytes) -> None:
        try:
            adapter.validate_json(body, strict=True)
        except ValueError as exc:  # pydantic's ValidationError is a ValueError
            raise InputRejected(_reason(exc, type_name)) from None

    return check


def _decoding(serde: Serde[typing.Any], type_name: typing.Optional[str]) -> typing.Callable[[bytes], None]:
    def check(body: bytes) -> None:
        try:
            serde.deserialize(body)
        except Exception as exc:
            if type_name is None:
                raise InputRejected(f"cannot decode the request body: {_first_line(exc)}") from None
            raise InputRejected(_reason(exc, type_name)) from None

    return check


def _reason(exc: BaseException, type_name: str) -> str:
    """One line: what pydantic found wrong (the offending fields by path), or the JSON error."""
    errors = getattr(exc, "errors", None)
    details: typing.List[str] = []
    if callable(errors):
        try:
            found = errors()
        except Exception:
            found = []
        if any(error.get("type") == "json_invalid" for error in found):
            return f"the body is not valid JSON: {found[0].get('msg', '')}"
        details = [
            f"{'.'.join(str(part) for part in error.get('loc', ())) or 'input'}: {error.get('msg', '')}"
            for error in found
        ]
    if not details:
        if isinstance(exc, ValueError) and type(exc).__name__ == "JSONDecodeError":
            return f"the body is not valid JSON: {_first_line(exc)}"
        return f"cannot decode the request body as {type_name}: {_first_line(exc)}"
    more = f" (and {len(details) - 3} more)" if len(details) > 3 else ""
    return f"the body is not a valid {type_name}: " + "; ".join(details[:3]) + more


def _type_name(hint: typing.Any) -> str:
    if isinstance(hint, type) and not typing.get_args(hint):
        return hint.__name__
    return str(hint).replace("typing.", "")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
