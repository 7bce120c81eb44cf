"""The LISTEN/NOTIFY channels of one schema and the grammar of what is sent on them.

Workers listen on the schema's work channel (something is ready, settings or schedules changed,
an invocation some client waits for is done) and on their own channel (a result they wait for, a
mailbox that has news, an attempt to stop). Anyone who creates work, a worker or an application in
its own transaction, hints on the work channel. A hint is only a hint: whoever misses one finds the
same news by polling, so a payload that does not parse is treated as "there is work".

Wire format (the NOTIFY payload): `""` work, `services`, `cron`, `done:<invocation id>`,
`wake:<invocation id>`, `stop:<invocation id>[:<epoch>]`.
"""

from __future__ import annotations

import enum
import typing
from dataclasses import dataclass


def work_channel(schema: str) -> str:
    """Hints that there is work, heard by every worker of `schema`."""
    return f"rpg_{schema}_work".lower()


def process_channel(schema: str, process_id: str) -> str:
    """Messages for one process (a worker or a waiting client)."""
    return f"rpg_{schema}_{process_id}".lower()


class HintKind(enum.Enum):
    WORK = ""  # something is ready to be claimed
    SERVICES = "services"  # service settings or deployments changed: read them again
    CRON = "cron"  # cron schedules changed: recompute the next tick
    DONE = "done"  # an invocation completed: whoever waits for its result reads it
    WAKE = "wake"  # an invocation's mailbox has news: the worker running it reads it
    STOP = "stop"  # an attempt must stop (cancelled, killed, paused, restarted)


@dataclass(frozen=True)
class Hint:
    kind: HintKind
    invocation_id: typing.Optional[str] = None
    epoch: typing.Optional[int] = None  # STOP only: stop just this attempt of the invocation

    def encode(self) -> str:
        if self.invocation_id is None:
            return self.kind.value
        suffix = "" if self.epoch is None else f":{self.epoch}"
        return f"{self.kind.value}:{self.invocation_id}{suffix}"


WORK = Hint(HintKind.WORK)
SERVICES_CHANGED = Hint(HintKind.SERVICES)
CRON_CHANGED = Hint(HintKind.CRON)


def done(invocation_id: str) -> Hint:
    return Hint(HintKind.DONE, invocation_id)


def wake(invocation_id: str) -> Hint:
    return Hint(HintKind.WAKE, invocation_id)


def stop(invocation_id: str, epoch: typing.Optional[int] = None) -> Hint:
    return Hint(HintKind.STOP, invocation_id, epoch)


def parse_hint(payload: str) -> Hint:
    """The hint a payload carries; anything unknown reads as WORK (a spurious claim costs little)."""
    kind, sep, rest = payload.partition(":")
    if not sep:
        if kind == HintKind.SERVICES.value:
            return SERVICES_CHANGED
        if kind == HintKind.CRON.value:
            return CRON_CHANGED
        return WORK
    if kind == HintKind.STOP.value:
        invocation_id, _, epoch = rest.partition(":")
        return stop(invocation_id, int(epoch) if epoch.isdigit() else None)
    if kind in (HintKind.DONE.value, HintKind.WAKE.value) and rest:
        return Hint(HintKind(kind), rest)
    return WORK
