// The TypeScript SDK's side of restate-pg's protocol tests: one small handler per context feature a
// test needs, under names shared with tests/endpoints/python (prefixed by $RESTATE_TEST_PREFIX, so
// that both SDKs' services can be registered with one server at once).
//
// Counters live in files ($RESTATE_TEST_COUNTERS/<name>, one byte per bump): a test reads how often
// something ran, across attempts and across restarts of this process.
import * as restate from "@restatedev/restate-sdk";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

const PREFIX = process.env.RESTATE_TEST_PREFIX ?? "";
const COUNTERS = process.env.RESTATE_TEST_COUNTERS ?? path.join(os.tmpdir(), `restate-test-counters-${process.pid}`);

function counterFile(name: string): string {
  return path.join(COUNTERS, name.replace(/[^A-Za-z0-9_.-]/g, "_"));
}

/** Counts one more execution of `name` and returns the count (1 on the first). */
export function bump(name: string): number {
  fs.mkdirSync(COUNTERS, { recursive: true });
  const file = counterFile(name);
  fs.appendFileSync(file, "x");
  return fs.statSync(file).size;
}

/** Resolves once the file `name` exists in the counters' directory (a test's gate). */
async function opened(name: string): Promise<void> {
  const file = counterFile(name);
  while (!fs.existsSync(file)) await new Promise((resolve) => setTimeout(resolve, 20));
}

type ByName = { service: string; handler: string; key?: string; input?: unknown; idempotencyKey?: string };
type SendByName = ByName & { delayMs?: number };

const json = restate.serde.json;

/** A call to any handler by its name: it may live in this endpoint, another SDK's or in restate-pg. */
function byName(call: ByName) {
  return {
    service: call.service,
    method: call.handler,
    key: call.key,
    parameter: call.input ?? null,
    inputSerde: json,
    outputSerde: json,
    idempotencyKey: call.idempotencyKey,
  };
}

/** The callee of the typed calls below. */
export const echo = restate.service({
  name: PREFIX + "Echo",
  handlers: {
    echo: async (ctx: restate.Context, value: unknown) => value,
  },
});

export const calls = restate.service({
  name: PREFIX + "Calls",
  handlers: {
    callByName: async (ctx: restate.Context, call: ByName) => ctx.genericCall<unknown, unknown>(byName(call)),

    sendByName: async (ctx: restate.Context, call: SendByName) => {
      const handle = ctx.genericSend<unknown>({ ...byName(call), delay: call.delayMs });
      return await handle.invocationId;
    },

    /** A typed call to Echo/echo (serviceClient), with an optional idempotency key. */
    callEcho: async (ctx: restate.Context, req: { value: unknown; idempotencyKey?: string }) => {
      const client = ctx.serviceClient(echo);
      // an explicit `undefined` second argument is refused by the SDK: pass options only when there are some
      return req.idempotencyKey
        ? client.echo(req.value, restate.rpc.opts({ idempotencyKey: req.idempotencyKey }))
        : client.echo(req.value);
    },

    /** A typed one-way call to echo, delayed by `delayMs`, with an optional idempotency key. */
    sendEcho: async (ctx: restate.Context, req: { value: unknown; delayMs?: number; idempotencyKey?: string }) => {
      const handle = ctx.serviceSendClient(echo).echo(
        req.value,
        restate.rpc.sendOpts({ delay: req.delayMs, idempotencyKey: req.idempotencyKey })
      );
      return await handle.invocationId;
    },

    attach: async (ctx: restate.Context, invocationId: string) =>
      ctx.attach<unknown>(restate.InvocationIdParser.fromString(invocationId)),

    cancel: async (ctx: restate.Context, invocationId: string) => {
      ctx.cancel(restate.InvocationIdParser.fromString(invocationId));
    },
  },
});

export const steps = restate.service({
  name: PREFIX + "Steps",
  handlers: {
    sleep: async (ctx: restate.Context, millis: number) => {
      await ctx.sleep(millis);
      return "slept";
    },

    /** `n` journaled steps; `<key>.attempts` counts handler starts, `<key>.steps` step executions. */
    steps: async (ctx: restate.Context, req: { key: string; n: number }) => {
      bump(`${req.key}.attempts`);
      let total = 0;
      for (let i = 0; i < req.n; i++) {
        total += await ctx.run(`step-${i}`, () => {
          bump(`${req.key}.steps`);
          return i;
        });
      }
      return total;
    },

    /** `n` journaled steps, step `gate` held until the file `<counters>/<key>.open` exists (a test
     * creates it): `<key>.attempts` counts handler starts, `<key>.step-<i>` executions of step i,
     * `<key>.passed` how often the gated step went past its gate. */
    gated: async (ctx: restate.Context, req: { key: string; n: number; gate: number }) => {
      bump(`${req.key}.attempts`);
      let total = 0;
      for (let i = 0; i < req.n; i++) {
        total += await ctx.run(`step-${i}`, async () => {
          bump(`${req.key}.step-${i}`);
          if (i === req.gate) {
            await opened(`${req.key}.open`);
            bump(`${req.key}.passed`);
          }
          return i;
        });
      }
      return total;
    },

    runTerminal: async (ctx: restate.Context, message: string) => {
      await ctx.run("fails", () => {
        throw new restate.TerminalError(message, { errorCode: 418 });
      });
      return "unreachable";
    },

    /** A ctx.run that throws (retryably) `failures` times, then returns the execution count. */
    runRetried: async (ctx: restate.Context, req: { key: string; failures: number }) =>
      ctx.run("flaky", () => {
        const n = bump(req.key);
        if (n <= req.failures) throw new Error(`run failure ${n} of ${req.failures}`);
        return n;
      }),

    /** The handler itself throws (retryably) `failures` times, then returns the attempt count. */
    failNTimes: async (ctx: restate.Context, req: { key: string; failures: number }) => {
      const n = bump(req.key);
      if (n <= req.failures) throw new Error(`attempt ${n} of ${req.failures} fails`);
      return n;
    },

    /** Journals a run, fails, and on the next attempt issues a sleep in its place: a journal mismatch.
     * Which branch is taken depends on whether an attempt saw its run recorded, not on the attempt's
     * number: an attempt cut off before its run was recorded (a lost lease) takes the first branch again. */
    nonDeterministic: async (ctx: restate.Context, key: string) => {
      bump(key);
      if (!fs.existsSync(counterFile(`${key}.recorded`))) {
        await ctx.run("first", () => "recorded");
        bump(`${key}.recorded`);
        throw new Error("fail after the first attempt's run, to be replayed");
      }
      await ctx.sleep(1);
      return "unreachable";
    },

    /** ctx.rand: values, and whether the seed gives the same uuid on the retried attempt. */
    random: async (ctx: restate.Context, key: string) => {
      const uuid = ctx.rand.uuidv4();
      const value = ctx.rand.random();
      const recorded = await ctx.run("record", () => uuid);
      const attempt = bump(key);
      if (attempt === 1) throw new Error("retry once, to replay with the same seed");
      return { uuid, value, sameOnReplay: recorded === uuid, attempt };
    },

    /** Waits on an awakeable nobody resolves; when cancelled, journals a compensation and fails. */
    waitUntilCancelled: async (ctx: restate.Context, key: string) => {
      try {
        await ctx.awakeable<string>().promise;
      } catch (e) {
        if (e instanceof restate.TerminalError) {
          await ctx.run("compensate", () => bump(`${key}.compensated`));
        }
        throw e;
      }
      return "unreachable";
    },
  },
});

/** Holds an awakeable's id under a key, so that another handler can complete it. */
export const awakeableHolder = restate.object({
  name: PREFIX + "AwakeableHolder",
  handlers: {
    hold: async (ctx: restate.ObjectContext, id: string) => {
      ctx.set("id", id);
    },
    hasAwakeable: restate.handlers.object.shared(async (ctx: restate.ObjectSharedContext) => (await ctx.get<string>("id")) !== null),
    resolve: async (ctx: restate.ObjectContext, value: unknown) => {
      const id = await ctx.get<string>("id");
      if (id === null) throw new restate.TerminalError("no awakeable held", { errorCode: 404 });
      ctx.resolveAwakeable(id, value);
    },
    reject: async (ctx: restate.ObjectContext, reason: string) => {
      const id = await ctx.get<string>("id");
      if (id === null) throw new restate.TerminalError("no awakeable held", { errorCode: 404 });
      ctx.rejectAwakeable(id, reason);
    },
  },
});

export const awakeables = restate.service({
  name: PREFIX + "Awakeables",
  handlers: {
    /** Creates an awakeable, hands its id to AwakeableHolder/<holder>, and returns its value. */
    await: async (ctx: restate.Context, holder: string) => {
      const { id, promise } = ctx.awakeable<unknown>();
      ctx.objectSendClient(awakeableHolder, holder).hold(id);
      return promise;
    },
  },
});

/** Every state operation, as one virtual object; bound twice: eager state, and lazy state. */
function stateObject(name: string, lazy: boolean) {
  return restate.object({
    name,
    handlers: {
      set: async (ctx: restate.ObjectContext, req: { name: string; value: unknown }) => {
        ctx.set(req.name, req.value);
      },
      get: restate.handlers.object.shared(async (ctx: restate.ObjectSharedContext, name: string) => ctx.get<unknown>(name)),
      clear: async (ctx: restate.ObjectContext, name: string) => {
        ctx.clear(name);
      },
      clearAll: async (ctx: restate.ObjectContext) => {
        ctx.clearAll();
      },
      keys: restate.handlers.object.shared(async (ctx: restate.ObjectSharedContext) => (await ctx.stateKeys()).sort()),
      add: async (ctx: restate.ObjectContext, delta: number) => {
        const count = ((await ctx.get<number>("count")) ?? 0) + delta;
        ctx.set("count", count);
        return count;
      },
    },
    options: lazy ? { enableLazyState: true } : undefined,
  });
}

export const state = stateObject(PREFIX + "State", false);
export const lazyState = stateObject(PREFIX + "LazyState", true);

/** A workflow waiting on its durable promise "p", which its shared handlers resolve, reject, peek. */
export const promises = restate.workflow({
  name: PREFIX + "Promises",
  handlers: {
    run: async (ctx: restate.WorkflowContext, input: unknown) => {
      ctx.set("input", input);
      return ctx.promise<unknown>("p").get();
    },
    resolve: async (ctx: restate.WorkflowSharedContext, value: unknown) => {
      await ctx.promise<unknown>("p").resolve(value);
    },
    reject: async (ctx: restate.WorkflowSharedContext, message: string) => {
      await ctx.promise<unknown>("p").reject(message);
    },
    peek: async (ctx: restate.WorkflowSharedContext) => (await ctx.promise<unknown>("p").peek()) ?? null,
    get: async (ctx: restate.WorkflowSharedContext) => ctx.promise<unknown>("p").get(),
  },
});

/** Appends `line` and the time (ns, this process's monotonic clock) to `<counters>/<tag>.intervals`. */
function record(tag: string, line: string): void {
  fs.mkdirSync(COUNTERS, { recursive: true });
  fs.appendFileSync(path.join(COUNTERS, `${tag.replace(/[^A-Za-z0-9_.-]/g, "_")}.intervals`), `${line} ${process.hrtime.bigint()}\n`);
}

type Job = { tag: string; n: number; ms: number };
type FanOut = { scope: string; limitKey?: string; tag: string; count: number; ms: number };

/** Flow control's callee (issue 17): what it was started with, as ctx.request() tells it. */
export const scopedWork = restate.service({
  name: PREFIX + "ScopedWork",
  handlers: {
    /** Runs `ms` between two records of its own interval; answers the scope and limit key it was started with. */
    work: async (ctx: restate.Context, job: Job) => {
      record(job.tag, `start ${job.n}`);
      await new Promise((resolve) => setTimeout(resolve, job.ms));
      record(job.tag, `end ${job.n}`);
      const request = ctx.request();
      return { n: job.n, scope: request.scope ?? null, limitKey: request.limitKey ?? null };
    },
  },
});

/** Flow control (issue 17): the scope API of SDK 1.17 (ctx.scope, limitKey, genericSend's scope). */
export const scoped = restate.service({
  name: PREFIX + "Scoped",
  handlers: {
    /** `count` calls to work in the scope with the limit key (ctx.scope(...).serviceClient, rpc.opts), awaited together. */
    fanOut: async (ctx: restate.Context, req: FanOut) => {
      const client = ctx.scope(req.scope).serviceClient(scopedWork);
      const calls = [];
      for (let n = 0; n < req.count; n++) {
        const job = { tag: req.tag, n, ms: req.ms };
        calls.push(req.limitKey ? client.work(job, restate.rpc.opts({ limitKey: req.limitKey })) : client.work(job));
      }
      return restate.RestatePromise.all(calls);
    },

    /** One send to work in the scope with the limit key (genericSend's scope and limitKey); answers its invocation id. */
    sendOne: async (ctx: restate.Context, req: FanOut) => {
      const handle = ctx.genericSend<Job>({
        service: PREFIX + "ScopedWork", method: "work", parameter: { tag: req.tag, n: 0, ms: req.ms },
        inputSerde: json, scope: req.scope, limitKey: req.limitKey,
      });
      return await handle.invocationId;
    },
  },
});

export const ALL = [echo, calls, steps, awakeableHolder, awakeables, state, lazyState, promises, scopedWork, scoped] as const;
