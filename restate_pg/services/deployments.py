"""Deployments: what an operator is told about stranded invocations, in the workers' logs and by
the CLI; and the registry of SDK endpoints (`Endpoints`), registered as Restate registers them.

An invocation is pinned to the deployment that started it (see the README's "Upgrading without
breaking in-flight invocations"). When no registered worker runs that deployment, or resumes it
(an operator marked it compatible), its invocations wait for ever, showing as `ready` or
`suspended`. Nothing is wrong with them: they need a worker of their code, or an operator's word
that newer code may replay them. Every place that notices says the same thing, with the command
that releases them, so that the one sentence can be searched for.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from dataclasses import dataclass
from urllib.parse import urlsplit

from restate_pg.core import hints
from restate_pg.core.ids import new_deployment_id
from restate_pg.endpoints.discovery import Discovered, DiscoveryError, discover
from restate_pg.endpoints.manifest import ManifestError
from restate_pg.endpoints.metadata import service_document
from restate_pg.services import outcomes
from restate_pg.store.catalog import Catalog, EndpointRecord, Registry, RegistryChange
from restate_pg.store.queries import DEFAULT_SCHEMA


def release_command(
    taker: str, stranded: typing.Iterable[str], resumes: typing.Iterable[str] = (), schema: str = DEFAULT_SCHEMA
) -> str:
    """`restate-pg deployments compatible TAKER ...`: the marking replaces the taker's earlier one,
    so the command lists what it resumes already as well as every stranded deployment."""
    old = sorted(dict.fromkeys([*resumes, *stranded]))
    option = "" if schema == DEFAULT_SCHEMA else f" --schema {schema}"
    return f"restate-pg deployments compatible {taker} {' '.join(old)}{option}"


def stranded_messages(
    stranded: typing.Mapping[str, int],
    taker: typing.Optional[str],
    resumes: typing.Sequence[str] = (),
    schema: str = DEFAULT_SCHEMA,
) -> typing.List[str]:
    """One line per stranded deployment: its name, its count, and the way out. `taker` is the
    deployment the command would mark (the worker's own, or the newest with live workers); None
    when no deployment has live workers."""
    def way_out(deployment: str) -> str:
        if taker is None:
            return f"start a worker of {deployment} (no deployment has live workers now)"
        return (f"start a worker of {deployment}, or let deployment {taker} resume them with its code: "
                f"{release_command(taker, stranded, resumes, schema)}")

    return [
        f"{count} invocation(s) wait for deployment {deployment}, which no live worker runs or resumes: "
        f"{way_out(deployment)}"
        for deployment, count in sorted(stranded.items())
    ]


# -- SDK endpoints: registered, updated and removed as Restate's admin API does it ---------------

#: Header names as HTTP has them (RFC 9110 tokens).
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


@dataclass(frozen=True)
class Address:
    """Where an endpoint is: its uri as stored (no trailing slash), and what Restate compares to
    tell two registrations of one endpoint apart (authority and path, not the scheme)."""

    uri: str
    key: typing.Tuple[str, str]

    @classmethod
    def parse(cls, uri: typing.Any) -> typing.Union["Address", outcomes.InvalidField]:
        if not isinstance(uri, str) or not uri:
            return outcomes.InvalidField("uri", "it must be a string, an absolute http or https uri")
        try:
            parts = urlsplit(uri)
            parts.port  # noqa: B018 (a port that is no number raises here)
        except ValueError as exc:
            return outcomes.InvalidField("uri", f"The provided uri {uri} is not valid: {exc}")
        if not parts.scheme or not parts.netloc:
            return outcomes.InvalidField("uri", f"The provided uri {uri} is not absolute, only absolute URIs can be used.")
        if parts.scheme not in ("http", "https"):
            return outcomes.InvalidField("uri", f"The provided uri {uri} is neither http nor https.")
        if parts.query or parts.fragment or "\x00" in uri:
            return outcomes.InvalidField("uri", f"The provided uri {uri} has a query or fragment; give the endpoint's base uri.")
        path = parts.path.rstrip("/")
        return cls(f"{parts.scheme}://{parts.netloc}{path}", (parts.netloc.lower(), path))


def check_headers(headers: typing.Any) -> typing.Union[typing.Dict[str, str], outcomes.InvalidField]:
    """`additional_headers` as a mapping of header names to values, or why it is not one."""
    if headers is None:
        return {}
    if not isinstance(headers, dict):
        return outcomes.InvalidField("additional_headers", "it must be an object of header names to values")
    for name, value in headers.items():
        if not _HEADER_NAME.match(name):
            return outcomes.InvalidField("additional_headers", f"'{name}' is not a valid header name")
        if not isinstance(value, str) or not all(c == "\t" or " " <= c <= "~" for c in value):
            return outcomes.InvalidField("additional_headers", f"the value of '{name}' must be a string of visible ASCII")
    return {name.lower(): value for name, value in headers.items()}  # HTTP header names are case-insensitive


class Endpoints:
    """The registry of SDK endpoint deployments: Restate's rules over `Catalog.change_registry`.

    An endpoint is discovered before the registry is locked (discovery may take a second or
    more), then the rules are applied to what the registry holds under its lock, so that two
    registrations of one uri never both create a deployment.
    """

    def __init__(self, store: Catalog, channel: str) -> None:
        self.store = store
        self.channel = channel

    async def register(
        self, uri: typing.Any, additional_headers: typing.Any = None, *, use_http_11: bool = False,
        force: bool = False, breaking: bool = False, dry_run: bool = False,
    ) -> outcomes.Outcome:
        """Register the endpoint at `uri`: `EndpointDeployment` (created, unchanged: registered
        already and `force` not given, or overwritten), else why not."""
        address, headers = Address.parse(uri), check_headers(additional_headers)
        if isinstance(address, outcomes.InvalidField):
            return address
        if isinstance(headers, outcomes.InvalidField):
            return headers
        if not force:  # as Restate: a known endpoint is answered without asking it again
            known = _at(await self.store.endpoint_deployments(), address)
            if known is not None:
                return _unchanged(known)
        found = await _discover(address.uri, headers, use_http_11)
        if not isinstance(found, Discovered):
            return found

        def decide(registry: Registry) -> typing.Tuple[outcomes.Outcome, typing.Optional[RegistryChange]]:
            existing = _at(registry.endpoints, address)
            if existing is not None and not force:
                return _unchanged(existing), None
            deployment_id = existing["id"] if existing is not None else new_deployment_id()
            documents = []
            for service in found.manifest.services:
                current = registry.services.get(service.name)
                if current is not None and current["ty"] != _STORED_TYPES[service.ty] and not (breaking or force):
                    return outcomes.ServiceTypeChanged(service.name), None
                documents.append(service_document(service, deployment_id, 1 if current is None else current["revision"] + 1))
            record = _record(deployment_id, address.uri, headers, found, documents)
            registered = outcomes.EndpointDeployment(
                deployment_id, "created" if existing is None else "overwritten", tuple(documents),
                found.min_protocol_version, found.max_protocol_version, found.sdk_version)
            return registered, None if dry_run else RegistryChange(save=record)

        return await self.store.change_registry(decide, self.channel, hints.SERVICES_CHANGED)

    async def update(
        self, deployment_id: str, uri: typing.Any = None, additional_headers: typing.Any = None, *,
        use_http_11: typing.Optional[bool] = None, overwrite: bool = False, dry_run: bool = False,
    ) -> outcomes.Outcome:
        """Point an endpoint deployment elsewhere or change its headers (Restate's PATCH): it is
        discovered again and must support the same protocol versions; its services change only
        with `overwrite`, keeping their revisions."""
        current = _by_id(await self.store.endpoint_deployments(), deployment_id)
        if current is None:
            return await self._not_an_endpoint(deployment_id)
        if uri is None and additional_headers is None and use_http_11 is None:
            return outcomes.DeploymentUpdated(deployment_id)
        address = Address.parse(current["uri"] if uri is None else uri)
        headers = check_headers(current["additional_headers"] if additional_headers is None else additional_headers)
        if isinstance(address, outcomes.InvalidField):
            return address
        if isinstance(headers, outcomes.InvalidField):
            return headers
        http_11 = use_http_11 if use_http_11 is not None else (current["use_http_11"] if uri is None else False)
        found = await _discover(address.uri, headers, http_11)
        if not isinstance(found, Discovered):
            return found

        def decide(registry: Registry) -> typing.Tuple[outcomes.Outcome, typing.Optional[RegistryChange]]:
            stored = _by_id(registry.endpoints, deployment_id)
            if stored is None:
                return outcomes.UnknownDeployment(deployment_id), None
            other = _at(registry.endpoints, address)
            if other is not None and other["id"] != deployment_id:
                return outcomes.UriTaken(address.uri, other["id"]), None
            registered = (stored["min_protocol_version"], stored["max_protocol_version"])
            if registered != (found.min_protocol_version, found.max_protocol_version):
                return outcomes.ProtocolVersionsChanged(registered, (found.min_protocol_version, found.max_protocol_version)), None
            documents: typing.List[typing.Dict[str, typing.Any]] = list(stored["services"])
            latest_of = None
            if overwrite:
                revisions = {doc["name"]: doc.get("revision", 1) for doc in stored["services"]}
                documents = [service_document(s, deployment_id, revisions.get(s.name, 1)) for s in found.manifest.services]
                latest_of = [doc["name"] for doc in documents if registry.services.get(doc["name"], {}).get(
                    "deployment_id", deployment_id) == deployment_id]
            record = dataclasses.replace(_record(deployment_id, address.uri, headers, found, documents), latest_of=latest_of)
            change = RegistryChange(save=record, connection_only=not overwrite)
            return outcomes.DeploymentUpdated(deployment_id), None if dry_run else change

        return await self.store.change_registry(decide, self.channel, hints.SERVICES_CHANGED)

    async def remove(self, deployment_id: str) -> outcomes.Outcome:
        """Forget an endpoint deployment and the services it was the latest of (Restate's
        forced removal: invocations pinned to it are left without a deployment)."""

        def decide(registry: Registry) -> typing.Tuple[outcomes.Outcome, typing.Optional[RegistryChange]]:
            if _by_id(registry.endpoints, deployment_id) is None:
                return outcomes.UnknownDeployment(deployment_id), None
            return outcomes.DeploymentRemoved(), RegistryChange(remove=deployment_id)

        removed = await self.store.change_registry(decide, self.channel, hints.SERVICES_CHANGED)
        if isinstance(removed, outcomes.UnknownDeployment):
            return await self._not_an_endpoint(deployment_id)
        return removed

    async def _not_an_endpoint(self, deployment_id: str) -> outcomes.Outcome:
        if await self.store.list_deployments(deployment_id):
            return outcomes.InProcessDeployment(deployment_id)
        return outcomes.UnknownDeployment(deployment_id)


#: restate-pg's service types (`service.ty`), by the manifest's names.
_STORED_TYPES = {"SERVICE": "service", "VIRTUAL_OBJECT": "virtual_object", "WORKFLOW": "workflow"}


async def _discover(uri: str, headers: typing.Mapping[str, str], use_http_11: bool) -> typing.Union[Discovered, outcomes.Outcome]:
    try:
        return await discover(uri, headers, use_http_11)
    except (DiscoveryError, ManifestError) as exc:
        return outcomes.DiscoveryFailed(exc.message, exc.restate_code)


def _at(endpoints: typing.Iterable[typing.Mapping[str, typing.Any]], address: Address) -> typing.Optional[typing.Mapping[str, typing.Any]]:
    """The newest endpoint deployment at `address`, as Restate picks it."""
    matching = [row for row in endpoints if getattr(Address.parse(row["uri"]), "key", None) == address.key]
    return max(matching, key=lambda row: row["created_at"]) if matching else None


def _by_id(endpoints: typing.Iterable[typing.Mapping[str, typing.Any]], deployment_id: str) -> typing.Optional[typing.Mapping[str, typing.Any]]:
    return next((row for row in endpoints if row["id"] == deployment_id), None)


def _unchanged(row: typing.Mapping[str, typing.Any]) -> outcomes.EndpointDeployment:
    return outcomes.EndpointDeployment(row["id"], "unchanged", tuple(row["services"]), row["min_protocol_version"],
                                       row["max_protocol_version"], row["sdk_version"])


def _record(deployment_id: str, uri: str, headers: typing.Mapping[str, str], found: Discovered,
            documents: typing.Sequence[typing.Mapping[str, typing.Any]]) -> EndpointRecord:
    return EndpointRecord(
        id=deployment_id, uri=uri, protocol_mode=found.protocol_mode,
        min_protocol_version=found.min_protocol_version, max_protocol_version=found.max_protocol_version,
        use_http_11=found.use_http_11, additional_headers=headers, sdk_version=found.sdk_version,
        manifest=found.document, services=documents,
    )
