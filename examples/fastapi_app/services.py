"""The quickstart: a greeter service and a counter object, written exactly as for restate-sdk.

Run it with `restate-pg dev examples.fastapi_app.services:app`.
"""

import restate_pg as restate
from restate_pg import Context, ObjectContext, ObjectSharedContext

greeter = restate.Service("MyService")


@greeter.handler()
async def greet(ctx: Context, name: str) -> str:
    return f"Hello, {name}!"


counter = restate.VirtualObject("Counter")


@counter.handler()
async def add(ctx: ObjectContext, delta: int) -> int:
    count = (await ctx.get("count") or 0) + delta
    ctx.set("count", count)
    return count


@counter.handler(kind="shared")
async def get(ctx: ObjectSharedContext) -> int:
    return await ctx.get("count") or 0


app = restate.app([greeter, counter])
