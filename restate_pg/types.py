"""restate-sdk's `restate.types`: `HarnessEnvironment` (what `create_test_harness` yields) and
`extract_core_type`, which reads `Optional[T]` as ("optional", T)."""

from __future__ import annotations

import types
import typing

__all__ = ["HarnessEnvironment", "extract_core_type"]


def extract_core_type(annotation: typing.Any) -> typing.Tuple[typing.Literal["optional", "simple"], typing.Any]:
    """("optional", T) for `Optional[T]` (or `T | None`), else ("simple", annotation)."""
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 2 and type(None) in args:
        return "optional", args[0] if args[1] is type(None) else args[1]
    return "simple", annotation


def __getattr__(name: str) -> typing.Any:
    # The harness brings the ingress, the admin API and uvicorn: imported when asked for only.
    if name == "HarnessEnvironment":
        from restate_pg.testing.harness import HarnessEnvironment

        return HarnessEnvironment
    raise AttributeError(f"module 'restate_pg.types' has no attribute {name!r}")
