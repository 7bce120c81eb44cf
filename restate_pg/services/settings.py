"""Service settings as operators changed them (admin `PATCH /services/{name}`), over the code's.

Every process keeps its own copy of the overrides of its application's services: the ingress asks
whether a handler is public, attempts ask for their timeouts and retentions. It is read at start,
again on a "services" hint (sent by the admin API after a change), and with each housekeeping round
in case a hint was lost.
"""

from __future__ import annotations

import typing
from datetime import timedelta

from restate_pg.api.app import App
from restate_pg.api.definitions import Handler
from restate_pg.store.driver import SERVICE_SETTINGS, Store


class ServiceSettings:
    def __init__(self, store: Store, app: App) -> None:
        self.store = store
        self.app = app
        #: Settings operators changed, by service name.
        self._overrides: typing.Dict[str, typing.Dict[str, typing.Any]] = {}

    async def load(self) -> None:
        """Read the settings operators changed of this application's services."""
        overrides: typing.Dict[str, typing.Dict[str, typing.Any]] = {}
        for row in await self.store.list_services():
            if row["name"] in self.app.services:
                overrides[row["name"]] = {
                    name: row[name] if name == "public" else (None if row[name] is None else timedelta(seconds=row[name]))
                    for name in SERVICE_SETTINGS
                }
        self._overrides = overrides

    def setting(self, handler: Handler, name: str) -> typing.Any:
        """A timeout or retention of `handler`: an operator's override of its service's setting,
        else the handler's own, else its service's."""
        override = self._overrides.get(handler.service_name, {}).get(name)
        if override is not None:
            return override
        return handler.setting(name)

    def is_public(self, handler: Handler) -> bool:
        """Whether the ingress may call `handler`: not private in code, nor made private by an
        operator (`PATCH /services/{name}` with `public: false`)."""
        return not handler.is_private and self._overrides.get(handler.service_name, {}).get("public") is not False
