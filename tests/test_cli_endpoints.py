"""`restate-pg deployments register|list|describe|remove`, run as a user runs them (a subprocess),
against a stand-in SDK endpoint serving a manifest over real HTTP/2 cleartext and HTTP/1.1."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from tests.support.manifest_endpoint import manifest, serve_manifest, service
from tests.test_cli import assert_one_line_error, run_cli


async def cli(tmp_path: Path, database_url: str, *args: str):
    return await asyncio.to_thread(run_cli, "deployments", *args, "--database-url", database_url, cwd=tmp_path)


@pytest.mark.slow
async def test_register_list_describe_remove(tmp_path, clean_db):
    async with serve_manifest() as endpoint:
        endpoint.document = manifest(service("Greeter"), service("Cart", "VIRTUAL_OBJECT", {"name": "add"}))
        dry = await cli(tmp_path, clean_db, "register", endpoint.uri, "--dry-run")
        assert dry.returncode == 0, dry.stderr
        assert dry.stdout.startswith("dry run: nothing registered; deployment dp_1")
        listed = await cli(tmp_path, clean_db, "list", "--json")
        assert json.loads(listed.stdout) == []

        done = await cli(tmp_path, clean_db, "register", endpoint.uri, "--header", "x-token: t1", "--header", "x-other=2")
        assert done.returncode == 0, done.stderr
        first_line, *services = done.stdout.splitlines()
        deployment_id = first_line.split()[1]
        assert first_line == f"deployment {deployment_id} at {endpoint.uri} registered"
        assert services == ["  Greeter (Service, revision 1): greet", "  Cart (VirtualObject, revision 1): add"]
        assert {k: endpoint.seen[-1]["headers"][k] for k in ("x-token", "x-other")} == {"x-token": "t1", "x-other": "2"}
        assert endpoint.seen[-1]["http_version"] == "2"

        (row,) = json.loads((await cli(tmp_path, clean_db, "list", "--json")).stdout)
        assert (row["id"], row["endpoint"], row["services"]) == (deployment_id, endpoint.uri, "Greeter, Cart")
        described = json.loads((await cli(tmp_path, clean_db, "describe", deployment_id)).stdout)
        assert (described["uri"], described["http_version"], described["protocol_mode"]) == (endpoint.uri, "HTTP/2.0", "BIDI_STREAM")
        assert described["additional_headers"] == {"x-token": "t1", "x-other": "2"}
        assert [s["name"] for s in described["services"]] == ["Greeter", "Cart"]

        again = await cli(tmp_path, clean_db, "register", endpoint.uri)
        assert again.stdout.splitlines()[0] == f"deployment {deployment_id} at {endpoint.uri} is registered already (--force to overwrite it)"
        forced = await cli(tmp_path, clean_db, "register", endpoint.uri, "--force", "--json")
        assert json.loads(forced.stdout)["result"] == "overwritten"
        assert [s["revision"] for s in json.loads(forced.stdout)["services"]] == [2, 2]

        removed = await cli(tmp_path, clean_db, "remove", deployment_id)
        assert (removed.returncode, removed.stdout) == (0, f"deployment {deployment_id} removed\n")
        assert json.loads((await cli(tmp_path, clean_db, "list", "--json")).stdout) == []
        gone = await cli(tmp_path, clean_db, "remove", deployment_id)
        assert gone.returncode == 1
        assert_one_line_error(gone, f"deployment '{deployment_id}' not found")


@pytest.mark.slow
async def test_register_over_http_11(tmp_path, clean_db):
    async with serve_manifest(http2=False) as endpoint:
        refused = await cli(tmp_path, clean_db, "register", endpoint.uri)
        assert refused.returncode == 1
        assert_one_line_error(refused, "[META0014]", "consider discovery with --use-http1.1")
        done = await cli(tmp_path, clean_db, "register", endpoint.uri, "--use-http1.1")
        assert done.returncode == 0, done.stderr
        assert endpoint.seen[-1]["http_version"] == "1.1"


@pytest.mark.slow
async def test_failures_are_one_line(tmp_path, clean_db):
    unreachable = await cli(tmp_path, clean_db, "register", "http://127.0.0.1:1")
    assert unreachable.returncode == 1
    assert_one_line_error(unreachable, "[META0003] error when calling 'http://127.0.0.1:1/discover': unable to reach the "
                          "remote endpoint. Reason:")
    relative = await cli(tmp_path, clean_db, "register", "localhost/x")
    assert relative.returncode == 2
    assert_one_line_error(relative, "The request field 'uri' is invalid.")
    header = await cli(tmp_path, clean_db, "register", "http://127.0.0.1:1", "--header", "novalue")
    assert header.returncode == 2
    assert_one_line_error(header, "bad --header 'novalue'")
    async with serve_manifest() as endpoint:
        endpoint.document = manifest(service("Greeter"), low=1, high=3)
        old = await cli(tmp_path, clean_db, "register", endpoint.uri)
        assert old.returncode == 1
        assert_one_line_error(old, "[META0012] unsupported service protocol versions: [1, 3].")
        endpoint.document = manifest(service("Greeter"))
        assert (await cli(tmp_path, clean_db, "register", endpoint.uri)).returncode == 0
        endpoint.others["/objects/discover"] = manifest(service("Greeter", "VIRTUAL_OBJECT"))
        changed = await cli(tmp_path, clean_db, "register", endpoint.uri + "/objects")
        assert changed.returncode == 1
        assert_one_line_error(changed, "[META0006] detected a new service revision for 'Greeter'")
        assert (await cli(tmp_path, clean_db, "register", endpoint.uri + "/objects", "--breaking")).returncode == 0
    in_process = await cli(tmp_path, clean_db, "describe", "nope")
    assert in_process.returncode == 1
    assert_one_line_error(in_process, "deployment 'nope' not found")
