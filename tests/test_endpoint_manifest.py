"""The endpoint manifest on its own (no PostgreSQL, no HTTP): read into typed values with the
schema's defaults, refused where Restate's registry refuses it, and described in Restate's words.
Discovery and registration over real HTTP: tests/test_endpoint_registration.py."""

from __future__ import annotations

import pytest

from restate_pg.endpoints.manifest import InputPayload, MalformedManifest, ManifestRejected, OutputPayload, parse_manifest
from restate_pg.endpoints.metadata import input_description, output_description, service_document

pytestmark = pytest.mark.memory


def test_a_typescript_style_manifest_reads_with_its_defaults() -> None:
    manifest = parse_manifest({
        "protocolMode": "BIDI_STREAM", "minProtocolVersion": 5, "maxProtocolVersion": 6, "unknownFutureField": 1,
        "services": [{"name": "Counter", "ty": "VIRTUAL_OBJECT", "journalRetention": 60000, "handlers": [
            {"name": "add", "input": {"required": False, "contentType": "application/json"},
             "output": {"setContentTypeIfEmpty": False, "contentType": "application/json"}},
            {"name": "get", "ty": "SHARED", "enableLazyState": True, "retryPolicyMaxAttempts": 2,
             "retryPolicyOnMaxAttempts": "PAUSE"},
        ]}],
    })
    (counter,) = manifest.services
    add, get = counter.handlers
    assert (manifest.protocol_mode, manifest.min_protocol_version, manifest.max_protocol_version) == ("BIDI_STREAM", 5, 6)
    assert (counter.ty, counter.journal_retention_ms, add.kind(counter.ty), get.kind(counter.ty)) == (
        "VIRTUAL_OBJECT", 60000, "exclusive", "shared")
    assert add.input == InputPayload(False, "application/json") and get.input is None
    assert (get.enable_lazy_state, get.retry_policy.max_attempts, get.retry_policy.on_max_attempts) == (True, 2, "PAUSE")
    document = service_document(counter, "dp_1x", 3)
    assert (document["journal_retention"], document["revision"], document["idempotency_retention"]) == ("1m", 3, "1day")
    handlers = {h["name"]: h for h in document["handlers"]}
    assert handlers["get"]["input"] == {"required": False, "content_type": "*/*", "json_schema": None}
    assert handlers["get"]["retry_policy"] == {"max_attempts": 2, "on_max_attempts": "Pause"}


@pytest.mark.parametrize(("document", "error", "message"), [
    ([], MalformedManifest, "manifest: expected an object, got an array"),
    ({"minProtocolVersion": 5, "maxProtocolVersion": 5}, MalformedManifest, "manifest: missing field `services`"),
    ({"minProtocolVersion": "5", "maxProtocolVersion": 5, "services": []}, MalformedManifest,
     "manifest.minProtocolVersion: expected an integer, got a string"),
    ({"minProtocolVersion": 0, "maxProtocolVersion": 5, "services": []}, MalformedManifest,
     "manifest.minProtocolVersion: 0 is out of range"),
    ({"minProtocolVersion": 5, "maxProtocolVersion": 5, "protocolMode": "STREAM", "services": []}, MalformedManifest,
     "manifest.protocolMode: unknown variant 'STREAM'"),
    ({"minProtocolVersion": 5, "maxProtocolVersion": 5, "services": [{"name": "1x", "ty": "SERVICE", "handlers": []}]},
     MalformedManifest, "manifest.services[0].name: '1x' does not match"),
    ({"minProtocolVersion": 5, "maxProtocolVersion": 5, "services": [{"name": "S", "ty": "ACTOR", "handlers": []}]},
     MalformedManifest, "manifest.services[0].ty: unknown variant 'ACTOR'"),
    ({"minProtocolVersion": 5, "maxProtocolVersion": 5, "services": [
        {"name": "S", "ty": "SERVICE", "handlers": [{"name": "h", "metadata": {"k": 1}}]}]},
     MalformedManifest, "manifest.services[0].handlers[0].metadata.k: expected a string, got an integer"),
    ({"minProtocolVersion": 5, "maxProtocolVersion": 5, "services": [
        {"name": "OpenAPI", "ty": "SERVICE", "handlers": []}]}, ManifestRejected, "cannot insert/modify service 'OpenAPI'"),
    ({"minProtocolVersion": 5, "maxProtocolVersion": 5, "services": [
        {"name": "W", "ty": "WORKFLOW", "handlers": [{"name": "run", "ty": "EXCLUSIVE"}]}]},
     ManifestRejected, "invalid combination of service type and handler type '(Workflow, Some(Exclusive))'"),
    ({"minProtocolVersion": 5, "maxProtocolVersion": 5, "services": [
        {"name": "S", "ty": "SERVICE", "handlers": [{"name": "h", "workflowCompletionRetention": 1}]}]},
     ManifestRejected, "h sets the workflow_completion_retention, but it's not a Workflow handler"),
    ({"minProtocolVersion": 5, "maxProtocolVersion": 5, "services": [
        {"name": "W", "ty": "WORKFLOW", "handlers": [{"name": "run", "ty": "WORKFLOW", "idempotencyRetention": 1}]}]},
     ManifestRejected, "run sets the idempotency_retention, but it's a Workflow handler"),
    ({"minProtocolVersion": 5, "maxProtocolVersion": 5, "services": [
        {"name": "S", "ty": "SERVICE", "ingressPrivate": True, "handlers": [{"name": "h", "ingressPrivate": False}]}]},
     ManifestRejected, "The service S is private, but the h is explicitly set as public."),
    ({"minProtocolVersion": 5, "maxProtocolVersion": 5, "services": [
        {"name": "S", "ty": "SERVICE", "handlers": [{"name": "h", "input": {"contentType": "*/json"}}]}]},
     ManifestRejected, "the handler 'h' input content-type is not valid: can't parse the content-type '*/json': the "
     "wildcard format */subType is not supported"),
])
def test_invalid_manifests_say_what_is_wrong(document, error, message) -> None:
    with pytest.raises(error) as raised:
        parse_manifest(document)
    assert type(raised.value) is error and raised.value.message.startswith(message), raised.value.message


@pytest.mark.parametrize(("payload", "described"), [
    (InputPayload(), "*/*"),
    (InputPayload(required=True, content_type="application/json"), "application/json"),
    (InputPayload(required=False, content_type=None), "none"),
    (InputPayload(required=True, content_type="text/*", json_schema={"type": "string"}), "JSON string"),
    (InputPayload(required=True, content_type=None), "<invalid rules>"),
])
def test_input_descriptions_are_restates(payload, described) -> None:
    assert input_description(payload) == described


@pytest.mark.parametrize(("payload", "described"), [
    (OutputPayload(), "application/json"),
    (OutputPayload(content_type=None), "none"),
    (OutputPayload(content_type="application/proto", set_content_type_if_empty=True), "optional application/proto"),
    (OutputPayload(json_schema={"title": "Order"}), "JSON 'Order'"),
])
def test_output_descriptions_are_restates(payload, described) -> None:
    assert output_description(payload) == described
