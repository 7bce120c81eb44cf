"""`MODULE:APP`: the application a command runs, imported as `uvicorn` imports its app.

Every way this can go wrong (no such module, a typo in the attribute, an import that raises, an
object that is not an App) is one line naming the cause, since it is the first thing a new user
gets wrong; the pytest plugin (`restate_pg_app = MODULE:APP`) loads apps the same way.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any, Optional

from restate_pg.cli.errors import CLIError

__all__ = ["load_app"]


def load_app_or_none(spec: Optional[str]) -> Any:
    """The App `spec` names, or an empty one (serving only registered SDK endpoints) without it."""
    if spec is None:
        from restate_pg.api.app import App

        return App()
    return load_app(spec)


def load_app(spec: str) -> Any:
    """Import `MODULE:APP` (the current directory first on the path) and return the App it names.

    MODULE is a dotted module name or a path to a `.py` file; APP may be dotted (`mod:obj.app`).

    Raises `CLIError` with a one-line explanation if the module cannot be imported, lacks the
    attribute, or the attribute is not a `restate_pg.App`.
    """
    module_name, sep, attr_path = spec.rpartition(":")
    if not sep or not module_name.strip() or not attr_path.strip():
        raise CLIError(f"expected MODULE:APP (for example 'myproject.services:app'), got {spec!r}")
    module_name, attr_path = module_name.strip(), attr_path.strip()

    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)

    try:
        if module_name.endswith(".py") or os.sep in module_name or "/" in module_name:
            module = _import_file(Path(module_name))
        else:
            module = importlib.import_module(module_name)
    except CLIError:
        raise
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing and (module_name == missing or module_name.startswith(missing + ".")):
            raise CLIError(
                f"cannot import {module_name!r}: no module named {missing!r} "
                f"(searched the current directory, {cwd}, and sys.path)"
            ) from exc
        raise CLIError(f"importing {module_name!r} failed: {exc}{_where(exc)}") from exc
    except SyntaxError as exc:
        where = f" (at {exc.filename}:{exc.lineno})" if exc.filename else ""
        raise CLIError(f"importing {module_name!r} failed: SyntaxError: {exc.msg}{where}") from exc
    except Exception as exc:
        raise CLIError(
            f"importing {module_name!r} failed: {type(exc).__name__}: {exc}{_where(exc)}"
        ) from exc

    obj: Any = module
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise CLIError(
                f"module {module_name!r} has no attribute {attr_path!r}{_guard_hint(module, attr_path)}"
            ) from None

    if not _is_app(obj):
        raise CLIError(
            f"{spec!r} is {_describe(obj)}, not a restate_pg.App "
            "(build one with restate_pg.app([...services]))"
        )
    return obj


def _import_file(path: Path) -> ModuleType:
    """Import a module given as a file path (`examples/app.py:app`), with its folder on sys.path."""
    path = path.resolve()
    if not path.is_file():
        raise CLIError(f"no such file: {path}")
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)  # so that the file can import its neighbours
    if path.name == "__main__.py":
        return _import_main(path)
    name = path.stem if path.name != "__init__.py" else path.parent.name
    return _exec_file(name, path)


def _import_main(path: Path) -> ModuleType:
    """Import a `__main__.py` (a project laid out for `uv run .`) without running its main guard.

    Imported under its own name the file would see `__name__ == "__main__"` and start the
    program's own server inside restate-pg. In a package it is imported as `package.__main__`
    (so relative imports work); a lone file gets multiprocessing's name for the same job.
    """
    package = path.parent
    if (package / "__init__.py").is_file() and package.name.isidentifier():
        parent = str(package.parent)
        if parent not in sys.path:
            sys.path.insert(0, parent)
        return importlib.import_module(f"{package.name}.__main__")
    return _exec_file("__mp_main__", path)


def _exec_file(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise CLIError(f"cannot import {str(path)!r}: not a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def _guard_hint(module: ModuleType, attr_path: str) -> str:
    """Say why an app assigned only under `if __name__ == "__main__":` is not found."""
    try:
        source = Path(module.__file__ or "").read_text()
    except OSError:
        return ""
    if "__name__ ==" not in source and "__name__==" not in source:
        return ""
    return (
        f" outside its `if __name__ == \"__main__\":` block, which restate-pg never runs "
        f"(move `{attr_path.split('.')[0]} = restate.app(...)` above it)"
    )


def _is_app(obj: object) -> bool:
    try:
        from restate_pg.api.app import App
    except ImportError:
        return hasattr(obj, "services")
    return isinstance(obj, App)


def _describe(obj: object) -> str:
    kind = type(obj)
    name = kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
    return f"an instance of {name}"


def _where(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return ""
    frame = frames[-1]
    return f" (at {frame.filename}:{frame.lineno})"
