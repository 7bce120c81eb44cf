"""An app whose journal is sealed by a `JournalValueCodec` (tests/test_journal_codec.py).

`Sealing` stands for an encryption: it marks and reverses the bytes, so that a stored value is
recognisably encoded and no longer JSON. The codec comes from an async provider, which counts
how often it is built (once per app, as restate-sdk's endpoint builds it). `keep` journals a value
of every kind the codec covers: input, a run's result, state, a call's parameter and result, an
awakeable resolved by another handler, a promise-free sleep in between (a suspension in
always-replay mode), and the output.
"""

from __future__ import annotations

import typing
from datetime import timedelta

import pydantic

import restate_pg as restate
from restate_pg import Context, JournalValueCodec, ObjectContext


class Sealing(JournalValueCodec):
    MARK = b"sealed:"

    def encode(self, buf: bytes) -> bytes:
        return self.MARK + bytes(reversed(buf))

    async def decode(self, buf: bytes) -> bytes:
        if not buf.startswith(self.MARK):
            raise ValueError("not sealed by this codec")
        return bytes(reversed(buf[len(self.MARK):]))


#: One entry per time the provider built the codec.
BUILT: typing.List[Sealing] = []
#: One entry per execution of `keep`'s run (never again on replay).
MINTED: typing.List[str] = []


async def provide() -> Sealing:
    BUILT.append(Sealing())
    return BUILT[-1]


class Secret(pydantic.BaseModel):
    text: str


helper = restate.Service("SealedHelper")
ledger = restate.VirtualObject("SealedLedger")


@helper.handler()
async def echo(ctx: Context, text: str) -> str:
    return f"echo {text}"


@helper.handler()
async def unlock(ctx: Context, awakeable_id: str) -> None:
    ctx.resolve_awakeable(awakeable_id, {"word": "open"})


def mint(text: str) -> str:
    MINTED.append(text)
    return f"token-{text}"


@ledger.handler()
async def keep(ctx: ObjectContext, secret: Secret) -> typing.Dict[str, str]:
    assert isinstance(secret, Secret), secret  # decoded, then rebuilt by the serde
    minted = await ctx.run_typed("mint", mint, text=secret.text)
    ctx.set("secret", secret)
    echoed = await ctx.service_call(echo, secret.text)
    awakeable_id, opened = ctx.awakeable(type_hint=dict)
    ctx.service_send(unlock, awakeable_id)
    word = await opened
    await ctx.sleep(timedelta(milliseconds=1))
    kept = await ctx.get("secret", type_hint=Secret)
    assert kept is not None
    return {"minted": minted, "echoed": echoed, "word": word["word"], "kept": kept.text}


app = restate.app([helper, ledger], journal_value_codec=provide)


# -- for the harness's disable_retries ------------------------------------------------------------

failing = restate.Service("Failing")
#: Attempts made, by handler.
ATTEMPTS: typing.Dict[str, int] = {}


@failing.handler()
async def always(ctx: Context) -> str:
    ATTEMPTS["always"] = ATTEMPTS.get("always", 0) + 1
    raise ValueError("no luck")


@failing.handler(invocation_retry_policy=restate.InvocationRetryPolicy(
    max_attempts=3, on_max_attempts="kill", initial_interval=timedelta(milliseconds=10)))
async def patient(ctx: Context) -> str:
    """Its own policy: three attempts, whatever the default."""
    ATTEMPTS["patient"] = ATTEMPTS.get("patient", 0) + 1
    raise ValueError("no luck, thrice")


failing_app = restate.app([failing])
