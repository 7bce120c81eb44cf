// The benchmark's services (bench/app.py's, handler for handler) on Restate's TypeScript SDK,
// served over HTTP/2 cleartext as `restate.endpoint().listen()` serves them (BIDI_STREAM):
//   node --require examples/typescript/polyfill.js bench/typescript/build/main.js PORT
// The same process is registered with restate-pg and with restate-server (bench/typescript/run.py).
import * as restate from "@restatedev/restate-sdk";

const bench = restate.service({
  name: "Bench",
  handlers: {
    // Three journaled steps returning short strings: W1, W2 and W4.
    three_steps: async (ctx: restate.Context, name: string): Promise<string> => {
      const a = await ctx.run("one", () => "a");
      const b = await ctx.run("two", () => "b");
      const c = await ctx.run("three", () => "c");
      return `${name}:${a}${b}${c}`;
    },
    // One durable sleep: W5.
    sleeper: async (ctx: restate.Context, millis: number): Promise<void> => {
      await ctx.sleep(millis);
    },
  },
});

const counter = restate.object({
  name: "BenchCounter",
  handlers: {
    // Exclusive: get, add, set, return (W3).
    add: async (ctx: restate.ObjectContext, n: number): Promise<number> => {
      const value = ((await ctx.get<number>("value")) ?? 0) + n;
      ctx.set("value", value);
      return value;
    },
    get: restate.handlers.object.shared(
      async (ctx: restate.ObjectSharedContext): Promise<number> => (await ctx.get<number>("value")) ?? 0,
    ),
  },
});

const port = Number(process.argv[2]);
if (!Number.isInteger(port)) {
  console.error("usage: main.js PORT");
  process.exit(2);
}
restate.endpoint().bind(bench).bind(counter).listen(port).then((bound) => console.log(`listening on ${bound}`));
// A clean stop on SIGTERM: the server keeps the event loop alive otherwise.
process.on("SIGTERM", () => process.exit(0));
