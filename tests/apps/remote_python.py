import restate
from datetime import timedelta

greeter = restate.Service("Greeter")

@greeter.handler()
async def greet(ctx: restate.Context, name: str) -> str:
    upper = await ctx.run("upper", lambda: name.upper())
    await ctx.sleep(timedelta(milliseconds=200))
    return f"Hello, {upper}!"

counter = restate.VirtualObject("Counter")

@counter.handler()
async def add(ctx: restate.ObjectContext, delta: int) -> int:
    current = await ctx.get("count") or 0
    ctx.set("count", current + delta)
    return current + delta

@counter.handler(kind="shared")
async def get(ctx: restate.ObjectSharedContext) -> int:
    return await ctx.get("count") or 0

app = restate.app([greeter, counter])
