import { assert, describe, it } from "@effect/vitest"
import { Budget, BudgetStore, Events, Llm } from "@switchboard/core"
import { Effect, Exit, Fiber, Layer, Schedule, Stream } from "effect"
import { afterAll, beforeAll } from "vitest"
import { Redis, RedisBudgetStore } from "../src/index.ts"
import { type RedisServer, startRedis } from "./redisServer.ts"

let server: RedisServer
beforeAll(async () => {
  server = await startRedis()
})
afterAll(async () => {
  await server.stop()
})

let run = 0
const prefix = () => `f${process.pid}-${run++}:`
const mini = { provider: "openai", model: "gpt-4o-mini" }
const ask = { messages: [{ role: "user" as const, content: "q" }], maxTokens: 10 }

/** A full stack: Budget over a test leaf that answers after 0–40 ms, on Redis stores. */
const stack = (p: string, policy: "failOpen" | "failClosed") => {
  const leaf = Llm.layerTest({
    ...mini,
    record: false,
    respond: (_, i) => ({ text: "ok", usage: { inputTokens: 8, outputTokens: 1 + (i % 10) }, delay: (i * 7) % 40 })
  })
  return leaf.pipe(
    Budget.layer({ limitUsd: 1_000, window: "day", price: mini, name: "f" }),
    Layer.provideMerge(Redis.layer({ url: server.url, prefix: p, policy: { budget: policy }, commandTimeout: "250 millis" })),
    Layer.merge(Events.layer())
  )
}

/** What Redis holds for the budget now: `[spent, reserved]`. */
const stored = (p: string) =>
  Effect.promise(async () => {
    const reply = (await server.command("HMGET", `${p}b:r:f:global`, "s", "r")).split("\r\n")
    return [Number(reply[2]), Number(reply[4])] as const
  })

/** Calls `n` times concurrently, each bounded by a 2 s deadline: a call that hangs fails the test. */
const calls = (n: number) =>
  Effect.gen(function*() {
    const llm = yield* Llm.LLM
    return yield* Effect.forEach(
      Array.from({ length: n }),
      () => Effect.exit(Effect.timeoutOrElse(llm.generate(ask), { duration: "2 seconds", orElse: () => Effect.die(new Error("hung")) })),
      { concurrency: "unbounded" }
    )
  })

const paid = (exits: ReadonlyArray<Exit.Exit<{ readonly costUsd: number }, unknown>>) =>
  exits.reduce((sum, exit) => sum + (Exit.isSuccess(exit) ? exit.value.costUsd : 0), 0)

const hung = (exits: ReadonlyArray<Exit.Exit<unknown, unknown>>) =>
  exits.filter((exit) => Exit.isFailure(exit) && exit.cause.reasons.some((r) => r._tag === "Die")).length

const reconciled = Effect.gen(function*() {
  const store = (yield* BudgetStore.BudgetStore) as RedisBudgetStore.RedisBudgetStore
  let done = yield* store.reconcile
  while (done.pending > 0) {
    yield* Effect.sleep(50)
    done = yield* store.reconcile
  }
  return done
})

const killAndRestart = (p: string, policy: "failOpen" | "failClosed") =>
  Effect.gen(function*() {
    const events: Array<Events.LlmEvent> = []
    yield* Effect.forkScoped(Stream.runForEach(Events.stream, (e) => Effect.sync(() => events.push(e))))
    yield* Effect.yieldNow
    const before = yield* calls(50)
    // Redis dies with 100 calls in flight, and comes back 300 ms later.
    const during = yield* Effect.forkChild(calls(100))
    yield* Effect.sleep(15)
    yield* Effect.promise(() => server.kill())
    const down = yield* calls(50)
    yield* Effect.sleep(300)
    yield* Effect.promise(() => server.restart())
    const inFlight = yield* Fiber.join(during)
    const llm = yield* Llm.LLM
    // Wait (bounded) until the store retries Redis and admits again.
    const probe = yield* llm.generate(ask).pipe(Effect.retry({ schedule: Schedule.spaced(50), times: 100 }))
    const after = [Exit.succeed(probe), ...(yield* calls(50))]
    const reconcile = yield* reconciled
    return { before, inFlight, down, after, events, reconcile }
  })

describe("Redis faults, full stack", () => {
  it.live("failClosed budget: Redis killed mid-run refuses while down (no call hangs); spend exact after recovery, nothing reserved", () => {
    const p = prefix()
    return Effect.gen(function*() {
      const { after, before, down, events, inFlight } = yield* killAndRestart(p, "failClosed")
      assert.strictEqual(hung([...before, ...inFlight, ...down, ...after]), 0)
      assert.isTrue(down.every(Exit.isFailure))
      assert.isTrue(events.some((e) => e._tag === "StoreDegraded" && e.store === "budget" && e.policy === "failClosed"))
      assert.isTrue(before.every(Exit.isSuccess) && after.every(Exit.isSuccess))
      const [spent, reserved] = yield* stored(p)
      // Every answer that went through (some settled only by the replay) was charged exactly once.
      assert.closeTo(spent, paid(before) + paid(inFlight) + paid(after), 1e-12)
      assert.strictEqual(reserved, 0)
    }).pipe(Effect.scoped, Effect.provide(stack(p, "failClosed")))
  }, 30_000)

  it.live("failOpen budget: Redis killed mid-run keeps answering on local state; local charges reconciled, spend exact", () => {
    const p = prefix()
    return Effect.gen(function*() {
      const { after, before, down, events, inFlight, reconcile } = yield* killAndRestart(p, "failOpen")
      const all = [...before, ...inFlight, ...down, ...after]
      assert.strictEqual(hung(all), 0)
      assert.isTrue(all.every(Exit.isSuccess))
      assert.isAbove(reconcile.localCharges, 0)
      assert.isTrue(events.some((e) => e._tag === "StoreDegraded" && e.policy === "failOpen" && e.detail.includes("reconciled")))
      const [spent, reserved] = yield* stored(p)
      assert.closeTo(spent, paid(all), 1e-12)
      assert.strictEqual(reserved, 0)
    }).pipe(Effect.scoped, Effect.provide(stack(p, "failOpen")))
  }, 30_000)

  it.live("a slow Redis (DEBUG SLEEP 1.5 s): every call ends within the 250 ms command deadline, refused (failClosed) or answered (failOpen)", () => {
    const p = prefix()
    return Effect.gen(function*() {
      const closed = yield* Layer.build(stack(p, "failClosed"))
      const open = yield* Layer.build(stack(p, "failOpen"))
      const call = Effect.gen(function*() {
        return yield* Effect.exit((yield* Llm.LLM).generate(ask))
      })
      yield* Effect.provide(call, closed)
      yield* Effect.provide(call, open)
      yield* Effect.promise(() => server.sendNoWait("DEBUG", "SLEEP", "1.5"))
      const started = Date.now()
      const [refused, answered] = yield* Effect.all([Effect.provide(call, closed), Effect.provide(call, open)], { concurrency: 2 })
      assert.isBelow(Date.now() - started, 1_000)
      assert.isTrue(Exit.isFailure(refused))
      assert.isTrue(Exit.isSuccess(answered))
    }).pipe(Effect.scoped)
  }, 30_000)
})
