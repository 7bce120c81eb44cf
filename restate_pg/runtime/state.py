"""K/V state access: the context's state commands.

The machine journals them and keeps the overlay of this attempt's writes; what is left here is
checking that the handler may use state at all, and reading the stored state, at most once, when
a `get` or `state_keys` needs it (then journaled when the handler awaits the read).
"""

from __future__ import annotations

import typing

from restate_pg.api.errors import RetryableError
from restate_pg.api.serde import DefaultSerde, Serde
from restate_pg.runtime.core import AttemptFailed, ContextCore

T = typing.TypeVar("T")


class StateCommands(ContextCore):
    def _require_state(self, write: bool) -> typing.Tuple[str, str]:
        service = self._handler.service
        if not service.is_keyed:
            self._fail_attempt(RetryableError("this service type doesn't have state access"))
            raise AttemptFailed("this service type doesn't have state access")
        if write and self._handler.kind == "shared":
            self._fail_attempt(RetryableError("this handler type cannot write state"))
            raise AttemptFailed("this handler type cannot write state")
        return service.name, self._invocation.key or ""

    def known_state(self) -> typing.Optional[typing.Dict[str, bytes]]:
        """The key's whole state as this attempt's writes leave it, if the attempt knows all of it
        (see `StateOverlay.known`)."""
        return self._machine.state.known()

    async def _load_state(self) -> typing.Dict[str, bytes]:
        overlay = self._machine.state
        if overlay.loaded is None:
            service, key = self._require_state(False)
            overlay.loaded = await self._host.store.load_state(service, key)
        return overlay.loaded

    def get(
        self,
        name: str,
        serde: Serde[T] = DefaultSerde(),
        type_hint: typing.Optional[typing.Type[T]] = None,
        entry_name: typing.Optional[str] = None,
    ) -> typing.Awaitable[typing.Optional[T]]:
        self._require_state(False)
        if isinstance(serde, DefaultSerde):
            serde = serde.with_maybe_type(type_hint)
        command, replayed, known, raw = self._command(self._machine.get_state, name, entry_name)

        async def read() -> typing.Optional[T]:
            value = raw
            if not known:
                value = (await self._load_state()).get(name)
            if not replayed:
                self._machine.journal_get_state(command, name, entry_name, value)
            return None if value is None else serde.deserialize(await self.decoded(value))

        return read()

    def state_keys(self, entry_name: typing.Optional[str] = None) -> typing.Awaitable[typing.List[str]]:
        self._require_state(False)
        command, recorded_keys = self._command(self._machine.state_keys, entry_name)

        async def read() -> typing.List[str]:
            if recorded_keys is not None:
                return recorded_keys
            stored = {} if self._machine.state.cleared else await self._load_state()
            return self._machine.journal_state_keys(command, entry_name, stored)

        return read()

    def set(self, name: str, value: T, serde: Serde[T] = DefaultSerde(), entry_name: typing.Optional[str] = None) -> None:
        service, key = self._require_state(True)
        raw = self._encode(serde.serialize(value))
        self._command(self._machine.set_state, service, key, name, raw, entry_name)

    def clear(self, name: str, entry_name: typing.Optional[str] = None) -> None:
        service, key = self._require_state(True)
        self._command(self._machine.clear_state, service, key, name, entry_name)

    def clear_all(self, entry_name: typing.Optional[str] = None) -> None:
        service, key = self._require_state(True)
        self._command(self._machine.clear_all_state, service, key, entry_name)
