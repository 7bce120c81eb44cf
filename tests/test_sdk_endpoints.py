"""The SDK endpoints the service-protocol tests run against (tests/endpoints) are real and answer
discovery as Restate asks: every SDK and mode, over h2c and HTTP/1.1, the manifest versions
restate-server negotiates, request identity, crash and restart; and the seed's example serves its
three services. Each variant's manifest is kept in tests/data/manifests/ for other tests' use
(`RESTATE_PG_WRITE_MANIFESTS=1` rewrites them from the live endpoints; the test still compares)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.endpoints.fixtures import StartEndpoint
from tests.endpoints.processes import DISCOVER_ACCEPT, TS_BUILD, Endpoint, discover, start_seed_example

MANIFESTS = Path(__file__).parent / "data" / "manifests"
V = "application/vnd.restate.endpointmanifest.v{}+json"

#: Each test service: its type and its handlers with their kinds (None: a plain service's).
EXPECTED = {
    "Echo": ("SERVICE", {"echo": None}),
    "Calls": ("SERVICE", {h: None for h in ("callByName", "sendByName", "callEcho", "sendEcho", "attach", "cancel")}),
    "Steps": ("SERVICE", {h: None for h in ("sleep", "steps", "runTerminal", "runRetried", "failNTimes",
                                             "nonDeterministic", "random", "waitUntilCancelled", "gated")}),
    "AwakeableHolder": ("VIRTUAL_OBJECT", {"hold": "EXCLUSIVE", "hasAwakeable": "SHARED", "resolve": "EXCLUSIVE",
                                           "reject": "EXCLUSIVE"}),
    "Awakeables": ("SERVICE", {"await": None}),
    "State": ("VIRTUAL_OBJECT", {"set": "EXCLUSIVE", "get": "SHARED", "clear": "EXCLUSIVE", "clearAll": "EXCLUSIVE",
                                 "keys": "SHARED", "add": "EXCLUSIVE"}),
    "Promises": ("WORKFLOW", {"run": "WORKFLOW", "resolve": "SHARED", "reject": "SHARED", "peek": "SHARED", "get": "SHARED"}),
    "ScopedWork": ("SERVICE", {"work": None}),
    "Scoped": ("SERVICE", {"fanOut": None, "sendOne": None}),
}
EXPECTED["LazyState"] = EXPECTED["State"]


def _shape(manifest: dict) -> dict:
    return {
        service["name"]: (service["ty"], {handler["name"]: handler.get("ty") for handler in service["handlers"]})
        for service in manifest["services"]
    }


@pytest.mark.slow
def test_discover_as_restate_asks(sdk_endpoint: Endpoint) -> None:
    """restate-server's request (manifest v2 to v4 offered, over the mode's HTTP) gets v4, the
    protocol range 5 to 7, the mode's protocol mode, and every test service and handler."""
    answer = discover(sdk_endpoint)

    assert answer.status_code == 200, answer.text
    assert answer.http_version == ("HTTP/2" if sdk_endpoint.http2 else "HTTP/1.1")
    assert answer.headers["content-type"] == V.format(4)
    assert answer.headers["x-restate-server"].startswith(f"restate-sdk-{sdk_endpoint.sdk}/")
    manifest = answer.json()
    assert (manifest["minProtocolVersion"], manifest["maxProtocolVersion"]) == (5, 7)
    assert manifest["protocolMode"] == sdk_endpoint.protocol_mode
    assert _shape(manifest) == EXPECTED
    lazy = {service["name"]: service.get("enableLazyState") for service in manifest["services"]}
    assert lazy["LazyState"] is True and not lazy["State"]

    stored = MANIFESTS / f"{sdk_endpoint.sdk}-{sdk_endpoint.mode}.json"
    if os.environ.get("RESTATE_PG_WRITE_MANIFESTS") == "1":
        stored.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    assert json.loads(stored.read_text()) == manifest, f"{stored} is stale: rewrite it with RESTATE_PG_WRITE_MANIFESTS=1"


@pytest.mark.parametrize("sdk", ["typescript", "python"])
def test_discover_negotiates_the_manifest_version(sdk: str, start_endpoint: StartEndpoint) -> None:
    """v3 alone gets v3; v2 alone gets 500, since the lazy-state object needs v3 (restate-server
    retries a 500); v1 gets 415."""
    endpoint = start_endpoint(sdk, "h2")

    v3 = discover(endpoint, V.format(3))
    assert (v3.status_code, v3.headers["content-type"]) == (200, V.format(3))
    assert _shape(v3.json()) == EXPECTED

    v2 = discover(endpoint, V.format(2))
    assert v2.status_code == 500 and "enableLazyState" in v2.text, v2.text

    assert discover(endpoint, V.format(1)).status_code == 415


def test_typescript_listen_speaks_only_h2c(typescript_endpoint: Endpoint) -> None:
    """`endpoint().listen()` is an HTTP/2-only server: an HTTP/1.1 request is not answered at all
    (register such an endpoint without use_http_11)."""
    with httpx.Client(http1=True, http2=False) as client, pytest.raises(httpx.RemoteProtocolError):
        client.get(f"{typescript_endpoint.url}/discover", headers={"accept": DISCOVER_ACCEPT})


def test_python_endpoint_answers_both_http_versions(python_endpoint: Endpoint) -> None:
    """hypercorn serves h2c and HTTP/1.1 on one port; restate-sdk's manifest says BIDI_STREAM
    over HTTP/2 and REQUEST_RESPONSE over HTTP/1.1."""
    with httpx.Client(http1=True, http2=False) as client:
        answer = client.get(f"{python_endpoint.url}/discover", headers={"accept": DISCOVER_ACCEPT})
    assert (answer.status_code, answer.http_version) == (200, "HTTP/1.1")
    assert answer.json()["protocolMode"] == "REQUEST_RESPONSE"
    assert discover(python_endpoint).json()["protocolMode"] == "BIDI_STREAM"


def _node(script: str, *args: str, env: dict | None = None) -> str:
    return subprocess.run(["node", str(TS_BUILD / script), *args], check=True, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}).stdout.strip()


@pytest.mark.parametrize("sdk", ["typescript", "python"])
@pytest.mark.slow
def test_identity_keys_make_the_endpoint_check_signatures(sdk: str, start_endpoint: StartEndpoint, node_modules: Path) -> None:
    """With $RESTATE_IDENTITY_KEYS, an endpoint answers only requests signed with the key's private
    half (`x-restate-jwt-v1`, audience the path): unsigned and wrongly signed ones get 401."""
    ours, theirs = json.loads(_node("keygen.js")), json.loads(_node("keygen.js"))
    endpoint = start_endpoint(sdk, "h2", env={"RESTATE_IDENTITY_KEYS": ours["publicKey"]})

    def signed_by(keys: dict) -> httpx.Response:
        token = _node("sign.js", "/discover", env={"RESTATE_TEST_SIGNING_KEY": keys["privateKeyPem"]})
        with httpx.Client(http1=False, http2=True) as client:
            return client.get(f"{endpoint.url}/discover", headers={
                "accept": DISCOVER_ACCEPT, "x-restate-signature-scheme": "v1", "x-restate-jwt-v1": token})

    assert discover(endpoint).status_code == 401
    assert signed_by(theirs).status_code == 401
    answer = signed_by(ours)
    assert (answer.status_code, answer.headers["content-type"]) == (200, V.format(4))


@pytest.mark.parametrize("sdk", ["typescript", "python"])
@pytest.mark.slow
def test_endpoint_killed_and_restarted_on_its_port(sdk: str, start_endpoint: StartEndpoint) -> None:
    """kill() is a SIGKILL (the process is gone at once), restart() serves again on the same port."""
    endpoint = start_endpoint(sdk, "h1")
    endpoint.kill()
    assert endpoint.process.process is not None and endpoint.process.process.returncode == -9
    with pytest.raises(httpx.ConnectError):
        discover(endpoint)

    killed, port = endpoint.process.pid, endpoint.port
    again = endpoint.restart()
    try:
        assert again is endpoint and again.port == port and again.process.pid != killed
        assert discover(again).status_code == 200
    finally:
        again.stop()
    assert again.process.process is not None and again.process.process.returncode == 0


@pytest.mark.slow
def test_seed_example_serves_its_three_services(node_modules: Path) -> None:
    """examples/typescript runs as its README says (ts-node, the polyfill loaded by tsconfig's
    ts-node section) and serves the seed's services on 9080, in bidirectional mode over h2c."""
    example = start_seed_example()
    try:
        manifest = discover(example).json()
    finally:
        example.stop()
    assert manifest["protocolMode"] == "BIDI_STREAM"
    assert _shape(manifest) == {
        "MyService": ("SERVICE", {"greet": None}),
        "Counter": ("VIRTUAL_OBJECT", {"add": "EXCLUSIVE", "get": "SHARED"}),
        "PaymentWorkflow": ("WORKFLOW", {"run": "WORKFLOW", "approve": "SHARED", "reject": "SHARED"}),
    }
