"""restate-sdk's public surface, read from the installed package, and how restate_pg's differs.

Used by tests/test_sdk_parity.py; a module of its own so that the comparison can be run by hand
(`python -m tests.sdk_surface`) to list every gap after upgrading restate-sdk.
"""

from __future__ import annotations

import importlib
import inspect
import typing

#: restate-sdk's modules that user code imports, and restate_pg's module of the same name.
MODULES = [
    "", "asyncio", "client_types", "context", "context_managers", "entry_codec", "exceptions",
    "extensions", "handler", "logging", "object", "retry_policy", "serde", "service", "types",
    "workflow", "connection", "endpoint", "ext", "ext.tracing", "ext.pydantic", "ext.openai", "ext.turnstile", "ext.adk", "ext.adk.plugin",
    "ext.adk.session", "ext.adk.summarizer", "ext.langchain",
]
# (`restate.harness` needs Docker's testcontainers to import; its two public functions are compared
# through the package's top level, which re-exports them with the same signatures.)

#: restate-sdk's internals that live in these modules but are not a contract of user code: the
#: machinery that speaks Restate's service protocol (an SDK endpoint's side of the wire), which
#: restate-pg runs in-process instead. Each is absent on purpose.
INTERNAL = {
    "handler": {"update_handler_io_with_input_type_hints", "update_handler_io_with_return_type_hints",
                "update_handler_io_with_type_hints", "make_handler", "handler_from_callable",
                "invoke_handler", "check_state_preload_options"},
    "harness": {"find_free_port", "run_in_background", "BindAddress", "TcpSocketBindAddress", "AsgiServer",
                "RestateContainer", "TestConfiguration", "RestateTestHarness", "create_app_server",
                "create_restate_container"},
    "serde": {"try_import_pydantic_base_model", "try_import_from_dacite", "try_import_msgspec_api",
              "MsgspecJsonAPI", "DaciteToDict", "DaciteFromDict"},
    "endpoint": {"Endpoint"},
}


def sdk_names(module: str) -> typing.Dict[str, typing.Any]:
    """The public names restate-sdk's `module` defines or lists in `__all__` (TypeVars aside)."""
    mod = importlib.import_module("restate" + ("." + module if module else ""))
    listed = getattr(mod, "__all__", None)
    names = set(listed or ())
    if listed is None:
        full = mod.__name__
        names = {n for n, v in vars(mod).items() if getattr(v, "__module__", None) == full}
    names -= INTERNAL.get(module, set())
    return {n: getattr(mod, n) for n in sorted(names)
            if not n.startswith("_") and not isinstance(getattr(mod, n), (typing.TypeVar, typing.ParamSpec))}


def _signature(obj: typing.Any) -> typing.Optional[inspect.Signature]:
    try:
        return inspect.signature(obj)
    except (TypeError, ValueError):
        return None


def signature_gaps(where: str, sdk: typing.Any, ours: typing.Any) -> typing.List[str]:
    """Parameters of `sdk` that `ours` lacks, or takes in another kind or with another default.
    `ours` may take more parameters, if they have defaults."""
    theirs, mine = _signature(sdk), _signature(ours)
    if theirs is None or mine is None:
        return []
    gaps = []
    params = list(mine.parameters.values())
    for i, p in enumerate(theirs.parameters.values()):
        other = mine.parameters.get(p.name)
        if other is None:
            gaps.append(f"{where}: no parameter {p.name!r}")
            continue
        if p.kind is not other.kind:
            gaps.append(f"{where}({p.name}): {other.kind.description}, restate-sdk's is {p.kind.description}")
        elif p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and params.index(other) != i:
            gaps.append(f"{where}({p.name}): at position {params.index(other)}, restate-sdk's at {i}")
        if p.default is not p.empty and _default(p.default) != _default(other.default):  # ours may add one
            gaps.append(f"{where}({p.name}): default {other.default!r}, restate-sdk's is {p.default!r}")
    return gaps


def _default(value: typing.Any) -> typing.Any:
    """Defaults compared by value, or by class name for objects (DefaultSerde(), RunOptions())."""
    if value is inspect.Parameter.empty or isinstance(value, (str, int, float, bool, type(None), tuple)):
        return value
    return type(value).__name__


def gaps() -> typing.List[str]:
    """Every difference between restate-sdk's surface and restate_pg's, one line each."""
    found = []
    for module in MODULES:
        ours_name = "restate_pg" + ("." + module if module else "")
        try:
            ours_mod = importlib.import_module(ours_name)
        except ImportError as exc:
            found.append(f"{ours_name}: cannot import ({exc})")
            continue
        for name, sdk in sdk_names(module).items():
            where = f"{ours_name}.{name}"
            if not hasattr(ours_mod, name):
                found.append(f"{where}: missing")
                continue
            ours = getattr(ours_mod, name)
            if inspect.isclass(sdk):
                if not inspect.isclass(ours):
                    found.append(f"{where}: not a class")
                    continue
                for attr, value in vars(sdk).items():
                    if attr.startswith("_") and attr != "__init__":
                        continue
                    if not hasattr(ours, attr):
                        found.append(f"{where}.{attr}: missing")
                    elif callable(value) and not isinstance(value, type):
                        found += signature_gaps(f"{where}.{attr}", value, getattr(ours, attr))
            elif callable(sdk):
                found += signature_gaps(where, sdk, ours)
    return found


if __name__ == "__main__":
    print("\n".join(gaps()) or "no gaps")
