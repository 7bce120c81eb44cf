"""The load: `/send`s of deposits through the real HTTP ingress, retried by the client.

Each send carries its own `idempotency-key` (its deposit id), so a client that got no answer,
because the ingress was killed or PostgreSQL was down, sends it again and the ingress dedupes it
(`PreviouslyAccepted`): "accepted" counts deposits, never requests. The plan is drawn from a seeded
generator, so a seed gives the same deposits, keys and amounts every time.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field

import httpx

#: Every 10th send goes through FaultTeller (ctx.object_call); every 8th of the others is delayed.
TELLER_EVERY = 10
DELAYED_EVERY = 8
DELAY = "200ms"
_REQUEST_TIMEOUT_S = 10.0
_MAX_BACKOFF_S = 1.0


@dataclass(frozen=True)
class Send:
    """One deposit to send: its id (also the idempotency key), target key and amount."""

    deposit: str
    key: str
    amount: int
    via_teller: bool
    delayed: bool

    @property
    def path(self) -> str:
        if self.via_teller:
            return "/FaultTeller/deposit/send"
        return f"/FaultAccount/{self.key}/deposit/send" + (f"?delay={DELAY}" if self.delayed else "")

    @property
    def body(self) -> dict[str, object]:
        body: dict[str, object] = {"deposit": self.deposit, "amount": self.amount}
        if self.via_teller:
            body["key"] = self.key
        return body


def plan(tag: str, sends: int, keys: int, rng: random.Random) -> list[Send]:
    """`sends` deposits over `keys` keys named `<tag>-kNN`, with deposit ids `<tag>-NNNNN`."""
    out, others = [], 0
    for i in range(sends):
        via_teller = i % TELLER_EVERY == TELLER_EVERY - 1
        delayed = False
        if not via_teller:
            others += 1
            delayed = others % DELAYED_EVERY == 0
        out.append(Send(f"{tag}-{i:05d}", f"{tag}-k{rng.randrange(keys):02d}", rng.randint(1, 100), via_teller, delayed))
    return out


@dataclass
class Outcome:
    """What became of one send on the client's side."""

    send: Send
    invocation_id: str | None = None
    status: str | None = None  # Accepted, or PreviouslyAccepted after a retry
    tries: int = 0
    refused: str | None = None  # an answer that is not worth retrying (4xx), or the deadline passed
    retried_because: list[str] = field(default_factory=list)


class Load:
    """Sends the plan at `concurrency`; `reached(n)` lets fault injectors follow its progress."""

    def __init__(self, base_url: str, sends: list[Send], concurrency: int, deadline_s: float) -> None:
        self.base_url = base_url
        self.sends = sends
        self.concurrency = concurrency
        self.deadline_s = deadline_s
        self.outcomes: list[Outcome] = [Outcome(s) for s in sends]
        self.accepted = 0
        self.started_at = 0.0
        self.finished_at = 0.0
        self._progress = asyncio.Condition()
        self.done = asyncio.Event()

    async def run(self) -> None:
        self.started_at = time.monotonic()
        queue: asyncio.Queue[Outcome] = asyncio.Queue()
        for outcome in self.outcomes:
            queue.put_nowait(outcome)
        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
        try:
            async with httpx.AsyncClient(base_url=self.base_url, timeout=_REQUEST_TIMEOUT_S, limits=limits) as client:
                await asyncio.gather(*(self._sender(client, queue) for _ in range(self.concurrency)))
        finally:
            self.finished_at = time.monotonic()
            self.done.set()
            async with self._progress:
                self._progress.notify_all()

    async def reached(self, count: int) -> None:
        """Return once `count` sends were accepted, or the load ended."""
        async with self._progress:
            await self._progress.wait_for(lambda: self.accepted >= count or self.done.is_set())

    async def _sender(self, client: httpx.AsyncClient, queue: asyncio.Queue[Outcome]) -> None:
        while not queue.empty():
            outcome = queue.get_nowait()
            await self._send(client, outcome)
            if outcome.invocation_id is not None:
                async with self._progress:
                    self.accepted += 1
                    self._progress.notify_all()

    async def _send(self, client: httpx.AsyncClient, outcome: Outcome) -> None:
        send = outcome.send
        give_up = time.monotonic() + self.deadline_s
        headers = {"idempotency-key": send.deposit}
        while True:
            outcome.tries += 1
            try:
                response = await client.post(send.path, json=send.body, headers=headers)
            except httpx.TransportError as exc:
                reason = type(exc).__name__
            else:
                if response.status_code == 202:
                    payload = response.json()
                    outcome.invocation_id, outcome.status = payload["invocationId"], payload["status"]
                    return
                reason = f"{response.status_code} {response.text[:200]}"
                if response.status_code < 500 and response.status_code not in (408, 429):
                    outcome.refused = reason
                    return
            outcome.retried_because.append(reason)
            if time.monotonic() >= give_up:
                outcome.refused = f"not accepted within {self.deadline_s:.0f} s; last: {reason}"
                return
            # the client's backoff between retries of one request, as any HTTP client has
            await asyncio.sleep(min(_MAX_BACKOFF_S, 0.05 * 2 ** min(outcome.tries, 5)))

    @property
    def wall_s(self) -> float:
        return self.finished_at - self.started_at
