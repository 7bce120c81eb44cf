"""The client over HTTP, to Restate's ingress contract (restate-pg's router, or Restate itself).

Calls and sends use the classic paths, as restate-sdk's client does; attach and output
`/restate/invocation/{id}/attach|output`; awakeables `/restate/awakeables/{id}/resolve|reject`.
Cancelling is an admin operation: it needs `admin_url` (restate-pg's admin router, or Restate's
admin API on port 9070).
"""

from __future__ import annotations

import typing
from datetime import datetime, timedelta
from urllib.parse import quote

import httpx

from restate_pg.api.app import App
from restate_pg.client.base import Headers, RestateClient, raise_failure
from restate_pg.client.handle import ClientError, RestateClientSendHandle
from restate_pg.client.target import Target
from restate_pg.core.records import Failure
from restate_pg.api.flow import FlowOptions
from restate_pg.validation import check_headers


class HttpClient(RestateClient):
    """A client of an ingress at `url` (its root: where `/restate/health` is)."""

    def __init__(
        self,
        url: str,
        *,
        headers: Headers = None,
        admin_url: typing.Optional[str] = None,
        app: typing.Optional[App] = None,
        timeout: typing.Optional[float] = None,
    ) -> None:
        check_headers(headers)
        self.app = app
        self.admin_url = admin_url.rstrip("/") if admin_url else None
        self.http = httpx.AsyncClient(base_url=url.rstrip("/") + "/", headers=headers or {}, timeout=timeout)

    async def close(self) -> None:
        await self.http.aclose()

    async def _request(self, method: str, path: str, **options: typing.Any) -> httpx.Response:
        response = await self.http.request(method, path, **options)
        if response.status_code >= 400:
            _raise(response)
        return response

    @staticmethod
    def _path(target: Target, key: typing.Optional[str], send: bool, flow: typing.Optional[FlowOptions]) -> str:
        """The classic path (`Service[/key]/handler[/send]`), or Restate's scoped one
        (`restate/scope/{scope}/call|send/Service[/key]/handler`)."""
        service, handler = quote(target.service, safe=""), quote(target.handler, safe="")
        path = f"{service}/{handler}" if key is None else f"{service}/{quote(key, safe='')}/{handler}"
        if flow is not None and flow.scope is not None:
            return f"restate/scope/{quote(flow.scope, safe='')}/{'send' if send else 'call'}/{path}"
        return path + "/send" if send else path

    @staticmethod
    def _headers(target: Target, payload: bytes, idempotency_key: typing.Optional[str], headers: Headers,
                 flow: typing.Optional[FlowOptions]) -> typing.Dict[str, str]:
        sent = dict(headers or {})
        content_type = target.content_type
        if content_type is not None and payload and not any(k.lower() == "content-type" for k in sent):
            sent["content-type"] = content_type
        if idempotency_key is not None:
            sent["idempotency-key"] = idempotency_key
        if flow is not None and flow.limit_key is not None:
            sent["x-restate-limit-key"] = flow.limit_key
        return sent

    async def _call(self, target: Target, key: typing.Optional[str], payload: bytes, idempotency_key: typing.Optional[str], headers: Headers,
                    flow: typing.Optional[FlowOptions] = None) -> bytes:
        target.check_input(payload)  # as the SQL client's submission does: a ValueError, nothing sent
        response = await self._request(
            "POST", self._path(target, key, False, flow), content=payload,
            headers=self._headers(target, payload, idempotency_key, headers, flow),
        )
        return response.content

    async def _send(self, target: Target, key: typing.Optional[str], payload: bytes, delay: typing.Optional[timedelta], idempotency_key: typing.Optional[str], headers: Headers,
                    flow: typing.Optional[FlowOptions] = None) -> RestateClientSendHandle:
        target.check_input(payload)
        params = {} if delay is None else {"delay": f"{delay // timedelta(milliseconds=1)}ms"}
        response = await self._request(
            "POST", self._path(target, key, True, flow), content=payload, params=params,
            headers=self._headers(target, payload, idempotency_key, headers, flow),
        )
        body = response.json()
        execution_time = body.get("executionTime")
        return RestateClientSendHandle(
            body["invocationId"], response.status_code, body.get("status", "Accepted"),
            None if execution_time is None else datetime.fromisoformat(execution_time.replace("Z", "+00:00")),
        )

    async def _attach(self, invocation_id: str) -> bytes:
        return (await self._request("GET", f"restate/invocation/{quote(invocation_id, safe='')}/attach")).content

    async def _output(self, invocation_id: str) -> bytes:
        return (await self._request("GET", f"restate/invocation/{quote(invocation_id, safe='')}/output")).content

    async def _complete_awakeable(self, awakeable_id: str, value: typing.Optional[bytes], failure: typing.Optional[Failure], content_type: str = "application/json") -> None:
        path = f"restate/awakeables/{quote(awakeable_id, safe='')}"
        if failure is None:
            await self._request("POST", f"{path}/resolve", content=value or b"", headers={"content-type": content_type})
        else:
            if failure.code != 500:  # the ingress's reject carries a message only
                raise ClientError(400, "over HTTP an awakeable is rejected with code 500 only, as Restate's ingress does")
            await self._request("POST", f"{path}/reject", content=failure.message.encode(), headers={"content-type": "text/plain"})

    async def _cancel(self, invocation_id: str) -> None:
        if self.admin_url is None:
            raise ClientError(400, "cancelling over HTTP goes through the admin API: create the client with admin_url=...")
        await self._request("PATCH", f"{self.admin_url}/invocations/{quote(invocation_id, safe='')}/cancel")


def _raise(response: httpx.Response) -> typing.NoReturn:
    """An error answer: the invocation's own failure as `TerminalError`, any other as `ClientError`."""
    try:
        body = response.json()
    except ValueError:
        body = None
    message = body.get("message") if isinstance(body, dict) else None
    if message is None:
        message = response.text or response.reason_phrase
    if response.headers.get("x-restate-error-source") == "invocation" and isinstance(body, dict):
        raise_failure(Failure(int(body.get("code", response.status_code)), message, body.get("metadata")))
    raise ClientError(response.status_code, message)
