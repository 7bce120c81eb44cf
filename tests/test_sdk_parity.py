"""restate_pg against the installed restate-sdk: every public name of its user-facing modules
exists here, with the same parameters (names, kinds, order, defaults).

`KNOWN` lists the differences left, each with its reason. The test fails on any other (a gap a
restate-sdk upgrade opened, or a change here) and on a listed one that is gone (then strike it)."""

from __future__ import annotations

import importlib
import sys

import pytest

from tests import sdk_surface

#: Differences kept on purpose or not built yet, by the prefix of the line `sdk_surface.gaps()` prints.
KNOWN = {
    # restate-sdk's Handler is the record its endpoint builds its discovery manifest from (service
    # tag, HandlerIO, arity); restate_pg.handler.Handler is restate-pg's own declared handler.
    "restate_pg.handler.Handler": "a different record, for a different runtime",
    "restate_pg.handler.HandlerIO": "discovery-manifest internals",
    "restate_pg.handler.ServiceTag": "discovery-manifest internals",
    "restate_pg.handler.TypeHint": "discovery-manifest internals",
    # restate.connect / with_connection tunnel to Restate Cloud: here they raise ConnectError, and
    # the objects they would yield are never built.
    "restate_pg.connection.Connection": "never built: connect() raises ConnectError",
    "restate_pg.connection.TunnelInfo": "never built: connect() raises ConnectError",
}


def _known(line: str) -> str | None:
    return max((prefix for prefix in KNOWN if line.startswith(prefix)), key=len, default=None)


def test_restate_sdk_is_the_version_compared() -> None:
    from importlib.metadata import version

    assert version("restate-sdk") == "1.3.0", "restate-sdk was upgraded: run `python -m tests.sdk_surface`"


@pytest.mark.slow
def test_every_public_name_and_signature_of_restate_sdk_exists() -> None:
    gaps = sdk_surface.gaps()
    unknown = [line for line in gaps if _known(line) is None]
    assert not unknown, "\n".join(unknown)
    gone = sorted(set(KNOWN) - {_known(line) for line in gaps})
    assert not gone, f"no longer a difference, strike from KNOWN: {gone}"


@pytest.mark.parametrize("module", [  # the agent extensions import their libraries: seconds each
    pytest.param(m, marks=pytest.mark.slow) if m.startswith("ext.") else m
    for m in [m for m in sdk_surface.MODULES if m] + ["harness"]])
def test_each_submodule_imports_under_restate_pg(module: str) -> None:
    assert importlib.import_module(f"restate_pg.{module}").__name__ == f"restate_pg.{module}"


def test_the_package_does_not_load_the_client_or_the_harness_until_asked() -> None:
    import subprocess

    probe = ("import sys, restate_pg\n"
             "print(sorted(m for m in ('restate_pg.client.http', 'restate_pg.testing.harness') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "[]"


async def test_connect_and_with_connection_say_why_they_are_refused() -> None:
    import restate_pg as restate

    app = restate.app([])
    with pytest.raises(restate.ConnectError, match="no Restate server or Cloud to connect to"):
        await restate.connect(app)
    with pytest.raises(restate.ConnectError, match="create_router"):
        async with restate.with_connection(app):
            pass  # pragma: no cover


def test_the_harness_refuses_what_it_cannot_do_and_names_the_replacement() -> None:
    import restate_pg as restate

    with pytest.raises(NotImplementedError, match="create_test_harness"):
        restate.test_harness(restate.app([]))
