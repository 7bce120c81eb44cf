"""Completing awakeables from outside a handler (the ingress's `/restate/awakeables/{id}/resolve`,
the clients' `resolve_awakeable`): the value or failure goes to the awaiting invocation's mailbox,
and whoever runs it is woken; a value of another type than the one the waiter declared is refused."""

from __future__ import annotations

import typing

from restate_pg.api.completions import check_completion
from restate_pg.core.ids import parse_awakeable_id
from restate_pg.core.records import Failure, Resolution
from restate_pg.protocol.awakeables import awakeable_signal
from restate_pg.services.outcomes import InvalidAwakeableId, NotResolved, Resolved
from restate_pg.services.signals import Signals
from restate_pg.store.driver import Store

AwakeableOutcome = typing.Union[Resolved, NotResolved, InvalidAwakeableId]


class Awakeables:
    def __init__(self, store: Store, signals: Signals) -> None:
        self.store = store
        self.signals = signals

    async def complete(
        self, awakeable_id: str, value: typing.Optional[bytes], failure: typing.Optional[Failure] = None
    ) -> AwakeableOutcome:
        """Complete an awakeable with `value`, or with `failure` when given: an in-process
        handler's, or an SDK endpoint's (a signal to its invocation). Raises InputRejected (nothing
        written) when the value is not of the type the awaiting in-process handler declared."""
        signal = awakeable_signal(awakeable_id, value, failure)
        if signal is not None:
            status, owner = await self.store.resolve_signal(signal)
            if status != "resolved":
                return NotResolved(str(status))
            self.signals.wake(signal.invocation_id, owner)
            return Resolved()
        try:
            target, command = parse_awakeable_id(awakeable_id)
        except ValueError:
            return InvalidAwakeableId()
        resolution = Resolution(awakeable_id, target, command, value, failure)
        if failure is None:  # refused unless of the type the waiter declared (api/completions.py)
            check_completion(value, await self.store.awakeable_schema(resolution))
        status, owner = await self.store.resolve_awakeable(resolution)
        if status != "resolved":
            return NotResolved(str(status))
        self.signals.wake(target, owner)
        return Resolved()

    async def resolve(self, awakeable_id: str, value: bytes) -> AwakeableOutcome:
        """Complete an awakeable with a value (already serialized for the awaiting side)."""
        return await self.complete(awakeable_id, value)

    async def reject(self, awakeable_id: str, message: str, code: int = 500) -> AwakeableOutcome:
        """Complete an awakeable with a failure: the awaiting handler raises `TerminalError`."""
        return await self.complete(awakeable_id, None, Failure(code, message))
