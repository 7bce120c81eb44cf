"""`Cron`: a schedule that starts one invocation of a handler per tick of a cron expression.

Ticks are computed by `cronsim` in the schedule's time zone (`zoneinfo`), then stored and
compared in UTC, always against the database's clock. Around DST changes cronsim behaves as
Debian's cron: a tick whose local time does not exist (spring forward) fires once, at the first
moment after the jump; a job at a fixed local time whose time happens twice (fall back) fires
once, the first time; jobs running every few minutes fire at each real instant that matches, so
the repeated hour is not skipped. A tick is one instant, so it never fires twice.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from restate_pg.api.definitions import Handler, handler_of
from restate_pg.api.errors import TerminalError
from restate_pg.api.flow import FlowOptions
from restate_pg.api.inputs import InputRejected

CatchUp = typing.Literal["latest", "all", "skip"]
CATCH_UP_POLICIES: typing.Tuple[str, ...] = typing.get_args(CatchUp)

#: With `catch_up="all"`, at most this many missed ticks fire (the most recent ones).
CATCH_UP_LIMIT = 100
#: With `catch_up="skip"`, a job found later than this was missed (its workers were down):
#: nothing fires until the next tick. Fired sooner, a tick is merely late and still fires.
LATE_GRACE = timedelta(seconds=30)


class InvalidCron(ValueError):
    """A schedule that cannot be registered; the message says why, for an HTTP 400 or the CLI."""


class CronExists(InvalidCron):
    """A schedule of that name exists already."""


class CronNotFound(LookupError):
    """No schedule has that name."""


@dataclass(frozen=True)
class Cron:
    """A scheduled invocation of `service/handler`, declared in code or created at run time.

    `schedule` has five fields (minute hour day month weekday) or six (seconds first).
    `handler` is a decorated handler function or a `"Service/handler"` string; `input` is the
    value passed to the handler (serialized with the handler's serde when given a function,
    as JSON otherwise; bytes are passed as they are). `catch_up` says what happens to ticks
    missed while no worker ran: `latest` fires the most recent one once, `all` fires each
    (at most `CATCH_UP_LIMIT`), `skip` fires none. `scope`, `limit_key` and `priority` are given
    to each tick's invocation, for the flow-control rules (docs/flow-control.md).
    """

    name: str
    schedule: str
    handler: typing.Any
    key: typing.Optional[str] = None
    input: typing.Any = None
    timezone: str = "UTC"
    catch_up: CatchUp = "latest"
    headers: typing.Mapping[str, str] = field(default_factory=dict)
    scope: typing.Optional[str] = None
    limit_key: typing.Optional[str] = None
    priority: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise InvalidCron("a cron job needs a non-empty name")
        if self.catch_up not in CATCH_UP_POLICIES:
            raise InvalidCron(f"catch_up must be one of {', '.join(CATCH_UP_POLICIES)}, got {self.catch_up!r}")
        if self.key is not None and not isinstance(self.key, str):
            raise InvalidCron("key must be a string")
        if not isinstance(self.headers, typing.Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in self.headers.items()
        ):
            raise InvalidCron("headers must map strings to strings")
        next_tick(self.schedule, self.timezone, datetime.now(timezone.utc))  # validates both
        self.target()  # validates the handler reference
        self.flow()

    def flow(self) -> FlowOptions:
        """Each tick's flow control, checked as a request's (a tick is never refused by a backlog:
        it would be lost)."""
        try:
            return FlowOptions(self.scope, self.limit_key, self.priority)
        except TerminalError as exc:
            raise InvalidCron(f"cron job {self.name!r}: {exc.message}") from None

    def target(self) -> typing.Tuple[str, str]:
        """The service and handler names."""
        if isinstance(self.handler, str):
            service, sep, handler = self.handler.partition("/")
            if not sep or not service or not handler or "/" in handler:
                raise InvalidCron(f"handler must be 'Service/handler', got {self.handler!r}")
            return service, handler
        try:
            described = handler_of(self.handler)
        except TypeError as exc:
            raise InvalidCron(str(exc)) from None
        return described.service_name, described.name

    def input_bytes(self) -> bytes:
        if isinstance(self.input, (bytes, bytearray)):
            return bytes(self.input)
        if isinstance(self.handler, str):
            import orjson

            return b"" if self.input is None else orjson.dumps(self.input)
        described = handler_of(self.handler)
        if self.input is None and not described.takes_input:
            return b""
        return described.input_serde.serialize(self.input)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise InvalidCron(f"unknown time zone {name!r} (use an IANA name such as 'Europe/Paris')") from None


def _sim(schedule: str, zone: str, start: datetime, reverse: bool = False) -> CronSim:
    if not isinstance(schedule, str):
        raise InvalidCron("schedule must be a cron expression string")
    try:
        return CronSim(schedule, start.astimezone(_zone(zone)), reverse=reverse)
    except CronSimError as exc:
        raise InvalidCron(f"invalid cron expression {schedule!r}: {exc}") from None


def next_tick(schedule: str, zone: str, after: datetime) -> datetime:
    """The first tick strictly after `after`, in UTC."""
    try:
        return next(_sim(schedule, zone, after)).astimezone(timezone.utc)
    except StopIteration:
        raise InvalidCron(f"cron expression {schedule!r} never matches") from None


def due_ticks(schedule: str, zone: str, next_at: datetime, now: datetime, catch_up: str) -> typing.List[datetime]:
    """The ticks to fire now, oldest first, for a job due at `next_at` (its first unfired tick)."""
    if next_at > now:
        return []
    if catch_up == "skip" and now - next_at > LATE_GRACE:
        return []
    ticks: typing.List[datetime] = []
    limit = 1 if catch_up == "latest" else CATCH_UP_LIMIT
    for tick in _sim(schedule, zone, now + timedelta(microseconds=1), reverse=True):  # ticks <= now
        tick = tick.astimezone(timezone.utc)
        if tick < next_at or len(ticks) == limit:
            break
        ticks.append(tick)
    return ticks[::-1]


def check_target(handler: typing.Optional["Handler"], cron: Cron) -> None:
    """Refuse a schedule its handler cannot run: missing, a workflow, or keyed the wrong way."""
    service, name = cron.target()
    if handler is None:
        raise InvalidCron(f"cron job {cron.name!r}: no handler {service}/{name}")
    if handler.service.service_type == "workflow":
        raise InvalidCron(f"cron job {cron.name!r}: workflows run once per key and cannot be scheduled")
    if handler.service.service_type == "virtual_object" and cron.key is None:
        raise InvalidCron(f"cron job {cron.name!r}: {service} is a virtual object, give the key to call")
    if handler.service.service_type == "service" and cron.key is not None:
        raise InvalidCron(f"cron job {cron.name!r}: {service} is a service, it takes no key")
    check_input(handler, cron)


def check_input(handler: "Handler", cron: Cron) -> None:
    """Refuse a schedule whose input its handler's type refuses: it would fail every tick, and
    each failure would be retried (`api/inputs.py`)."""
    try:
        handler.check_payload(cron.input_bytes(), None)
    except InputRejected as exc:
        raise InvalidCron(f"cron job {cron.name!r}: {exc.message}") from None
