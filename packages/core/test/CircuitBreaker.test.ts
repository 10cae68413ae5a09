import { assert, describe, it } from "@effect/vitest"
import { Clock, Duration, Effect, Fiber, Layer, Stream } from "effect"
import { TestClock } from "effect/testing"
import { BreakerStore, CircuitBreaker, Events, Llm, LlmError, SwitchboardConfigError } from "../src/index.ts"

const server = () => new LlmError.ServerError({ provider: "p", model: "m", status: 500 })
const ask = { messages: [{ role: "user" as const, content: "hi" }] }

/** A provider whose answers are taken from a mutable list (the last one repeats). */
const scripted = (steps: Array<Llm.TestStep>) =>
  Llm.makeTest({ provider: "p", model: "m", respond: (_req, i) => steps[Math.min(i, steps.length - 1)]! })

const outcome = (llm: Llm.LLM["Service"]) =>
  llm.generate(ask).pipe(Effect.as("ok"), Effect.catch((e) => Effect.succeed(e._tag)))

const setup = (options: CircuitBreaker.Options, steps: Array<Llm.TestStep>) =>
  Effect.gen(function*() {
    const test = yield* scripted(steps)
    const breaker = yield* CircuitBreaker.make(options)
    return { test, breaker, llm: breaker.service(test.service) }
  })

describe("CircuitBreaker", () => {
  it.effect("opens after failureThreshold consecutive counting failures and then fails fast without calling the provider", () =>
    Effect.gen(function*() {
      const { breaker, llm, test } = yield* setup({ failureThreshold: 3, cooldown: "10 seconds" }, [{ error: server() }])
      const outcomes = []
      for (let i = 0; i < 5; i++) outcomes.push(yield* outcome(llm))
      assert.deepStrictEqual(outcomes, ["ServerError", "ServerError", "ServerError", "CircuitOpen", "CircuitOpen"])
      assert.strictEqual((yield* test.requests).length, 3)
      const state = yield* breaker.state("p", "m")
      assert.deepStrictEqual(state, { _tag: "Open", until: 10_000, openings: 1 })
      const error = yield* Effect.flip(llm.generate(ask))
      assert.deepStrictEqual(error._tag === "CircuitOpen" && [error.provider, error.model, error.until], ["p", "m", 10_000])
    }))

  it.effect("a success resets the consecutive count when no window is given", () =>
    Effect.gen(function*() {
      const steps: Array<Llm.TestStep> = [{ error: server() }, { error: server() }, { text: "ok" }, { error: server() }, { error: server() }]
      const { breaker, llm } = yield* setup({ failureThreshold: 3 }, steps)
      for (let i = 0; i < 5; i++) yield* outcome(llm)
      assert.strictEqual((yield* breaker.state("p", "m"))._tag, "Closed")
    }))

  it.effect("with a window, only failures within it count", () =>
    Effect.gen(function*() {
      const { breaker, llm } = yield* setup({ failureThreshold: 3, window: "1 minute" }, [{ error: server() }])
      yield* outcome(llm)
      yield* outcome(llm)
      yield* TestClock.adjust("61 seconds")
      yield* outcome(llm)
      yield* outcome(llm)
      assert.strictEqual((yield* breaker.state("p", "m"))._tag, "Closed")
      yield* outcome(llm)
      assert.strictEqual((yield* breaker.state("p", "m"))._tag, "Open")
    }))

  it.effect("after the cooldown it admits exactly halfOpenProbes concurrent probes; others fail fast", () =>
    Effect.gen(function*() {
      const steps: Array<Llm.TestStep> = [{ error: server() }]
      const { llm, test } = yield* setup({ failureThreshold: 1, cooldown: "10 seconds", halfOpenProbes: 2 }, steps)
      yield* outcome(llm)
      steps[0] = { text: "ok", delay: "1 second" }
      yield* TestClock.adjust("10 seconds")
      const fibers = yield* Effect.forEach([1, 2, 3, 4], () => Effect.forkChild(outcome(llm)))
      yield* Effect.yieldNow
      const refused = yield* Fiber.join(fibers[2]!)
      assert.strictEqual(refused, "CircuitOpen")
      assert.strictEqual(yield* Fiber.join(fibers[3]!), "CircuitOpen")
      assert.strictEqual((yield* test.requests).length, 3)
      yield* TestClock.adjust("1 second")
      assert.deepStrictEqual([yield* Fiber.join(fibers[0]!), yield* Fiber.join(fibers[1]!)], ["ok", "ok"])
    }))

  it.effect("a probe's success closes it; a probe's failure reopens it with a doubled cooldown, capped at maxCooldown", () =>
    Effect.gen(function*() {
      const steps: Array<Llm.TestStep> = [{ error: server() }]
      const { breaker, llm } = yield* setup({ failureThreshold: 1, cooldown: "10 seconds", maxCooldown: "25 seconds" }, steps)
      yield* outcome(llm) // open for 10 s
      yield* TestClock.adjust("10 seconds")
      assert.strictEqual(yield* outcome(llm), "ServerError") // probe fails: open for 20 s
      assert.deepStrictEqual(yield* breaker.state("p", "m"), { _tag: "Open", until: 30_000, openings: 2 })
      yield* TestClock.adjust("19999 millis")
      assert.strictEqual(yield* outcome(llm), "CircuitOpen")
      yield* TestClock.adjust("1 millis")
      assert.strictEqual(yield* outcome(llm), "ServerError") // probe fails: open for min(40, 25) s
      assert.deepStrictEqual(yield* breaker.state("p", "m"), { _tag: "Open", until: 55_000, openings: 3 })
      yield* TestClock.adjust("25 seconds")
      steps[0] = { text: "ok" }
      assert.strictEqual(yield* outcome(llm), "ok")
      assert.deepStrictEqual(yield* breaker.state("p", "m"), { _tag: "Closed", failures: [] })
    }))

  it.effect("AuthenticationFailed opens it until the layer is rebuilt", () =>
    Effect.gen(function*() {
      const test = yield* scripted([{ error: new LlmError.AuthenticationFailed({ provider: "p", model: "m" }) }, { text: "ok" }])
      const layer = test.layer.pipe(CircuitBreaker.layer({ failureThreshold: 5 }))
      const run = Effect.provide(Effect.gen(function*() {
        const a = yield* Effect.flip(Llm.generate(ask))
        yield* TestClock.adjust("1 day")
        const b = yield* Effect.flip(Llm.generate(ask))
        return [a, b] as const
      }), layer)
      const [first, second] = yield* run
      assert.strictEqual(first._tag, "AuthenticationFailed")
      assert.strictEqual(second._tag, "CircuitOpen")
      assert.strictEqual(second._tag === "CircuitOpen" && second.until, Infinity)
      assert.strictEqual((yield* test.requests).length, 1)
      // a rebuilt layer starts closed
      assert.strictEqual((yield* Llm.generate(ask).pipe(Effect.provide(layer))).text, "ok")
    }))

  it.effect("PermissionDenied also opens it until rebuilt", () =>
    Effect.gen(function*() {
      const { breaker, llm } = yield* setup({}, [{ error: new LlmError.PermissionDenied({ provider: "p", model: "m" }) }])
      yield* outcome(llm)
      const state = yield* breaker.state("p", "m")
      assert.strictEqual(state._tag === "Open" && state.until, Infinity)
    }))

  it.effect("a 429 with retryAfter opens it at once for exactly that long", () =>
    Effect.gen(function*() {
      const limited = new LlmError.RateLimited({
        provider: "p",
        model: "m",
        scope: "requests",
        source: "provider",
        retryAfter: Duration.seconds(7)
      })
      const steps: Array<Llm.TestStep> = [{ error: limited }]
      const { llm } = yield* setup({ failureThreshold: 5, cooldown: "1 minute" }, steps)
      assert.strictEqual(yield* outcome(llm), "RateLimited")
      steps[0] = { text: "ok" }
      yield* TestClock.adjust("6999 millis")
      assert.strictEqual(yield* outcome(llm), "CircuitOpen")
      yield* TestClock.adjust("1 millis")
      assert.strictEqual(yield* outcome(llm), "ok")
    }))

  it.effect("InvalidRequest and ContextLengthExceeded never count", () =>
    Effect.gen(function*() {
      const steps: Array<Llm.TestStep> = [
        { error: new LlmError.InvalidRequest({ provider: "p", model: "m", message: "bad" }) },
        { error: new LlmError.ContextLengthExceeded({ provider: "p", model: "m" }) }
      ]
      const { breaker, llm, test } = yield* setup({ failureThreshold: 1 }, steps)
      for (let i = 0; i < 6; i++) yield* outcome(llm)
      assert.strictEqual((yield* test.requests).length, 6)
      assert.strictEqual((yield* breaker.state("p", "m"))._tag, "Closed")
    }))

  it.effect("circuits are per provider and model", () =>
    Effect.gen(function*() {
      const breaker = yield* CircuitBreaker.make({ failureThreshold: 1 })
      const test = yield* Llm.makeTest({
        provider: "p",
        respond: (req) => req.model === "bad" ? { error: new LlmError.ServerError({ provider: "p", model: "bad", status: 500 }) } : { text: "ok" }
      })
      const llm = breaker.service(test.service)
      yield* Effect.flip(llm.generate({ ...ask, model: "bad" }))
      assert.strictEqual((yield* Effect.flip(llm.generate({ ...ask, model: "bad" })))._tag, "CircuitOpen")
      assert.strictEqual((yield* llm.generate({ ...ask, model: "good" })).text, "ok")
      assert.strictEqual((yield* breaker.state("p", "good"))._tag, "Closed")
    }))

  it.effect("transitions are a stream and are published as CircuitStateChanged events, in order", () =>
    Effect.gen(function*() {
      const steps: Array<Llm.TestStep> = [{ error: server() }]
      const { breaker, llm } = yield* setup({ failureThreshold: 1, cooldown: "1 second" }, steps)
      const transitions: Array<string> = []
      const events: Array<string> = []
      yield* Effect.forkChild(Stream.runForEach(breaker.transitions, (t) => Effect.sync(() => transitions.push(`${t.from}>${t.to}`))))
      yield* Effect.forkChild(Stream.runForEach(Events.stream, (e) => Effect.sync(() => e._tag === "CircuitStateChanged" && events.push(`${e.from}>${e.to}`))))
      yield* Effect.yieldNow
      yield* outcome(llm)
      yield* TestClock.adjust("1 second")
      steps[0] = { text: "ok" }
      yield* outcome(llm)
      yield* Effect.yieldNow
      assert.deepStrictEqual(transitions, ["closed>open", "open>half-open", "half-open>closed"])
      assert.deepStrictEqual(events, transitions)
    }).pipe(Effect.provide(Events.layer())))

  it.effect("the event of a transition to open says until when: now plus the cooldown", () =>
    Effect.gen(function*() {
      const { llm } = yield* setup({ failureThreshold: 1, cooldown: "5 seconds" }, [{ error: server() }])
      const opened: Array<number | undefined> = []
      yield* Effect.forkChild(Stream.runForEach(Events.stream, (e) =>
        Effect.sync(() => {
          if (e._tag === "CircuitStateChanged" && e.to === "open") opened.push(e.until)
        })))
      yield* Effect.yieldNow
      const now = yield* Clock.currentTimeMillis
      yield* outcome(llm)
      yield* Effect.yieldNow
      assert.deepStrictEqual(opened, [now + 5_000])
    }).pipe(Effect.provide(Events.layer())))

  it.effect("guards streams too: an open circuit refuses a stream before calling the provider", () =>
    Effect.gen(function*() {
      const { llm, test } = yield* setup({ failureThreshold: 1 }, [{ error: server() }])
      yield* Effect.flip(Stream.runCollect(llm.stream(ask)))
      const error = yield* Effect.flip(Stream.runCollect(llm.stream(ask)))
      assert.strictEqual(error._tag, "CircuitOpen")
      assert.strictEqual((yield* test.requests).length, 1)
    }))

  it.effect("rejects bad options at build, in the layer's error channel, with an error naming the option", () =>
    Effect.gen(function*() {
      const cases: ReadonlyArray<readonly [CircuitBreaker.Options, string, RegExp]> = [
        [{ failureThreshold: 0 }, "CircuitBreaker.failureThreshold", /integer ≥ 1, got 0/],
        [{ failureThreshold: Number.NaN }, "CircuitBreaker.failureThreshold", /integer ≥ 1, got NaN/],
        [{ halfOpenProbes: 1.5 }, "CircuitBreaker.halfOpenProbes", /integer ≥ 1, got 1.5/],
        [{ cooldown: "soon" as Duration.Input }, "CircuitBreaker.cooldown", /duration/],
        [{ window: -5 }, "CircuitBreaker.window", /duration/],
        [{ maxCooldown: "forever" as Duration.Input }, "CircuitBreaker.maxCooldown", /duration/],
        [{ onStoreError: "panic" as "failOpen" }, "CircuitBreaker.onStoreError", /failOpen/]
      ]
      for (const [options, path, message] of cases) {
        const error = yield* Effect.flip(Layer.build(Llm.layerTest([]).pipe(CircuitBreaker.layer(options))))
        assert.strictEqual(error._tag, "SwitchboardConfigError")
        assert.strictEqual(error.path, path)
        assert.match(error.message, message)
        const fromMake = yield* Effect.flip(CircuitBreaker.make(options))
        assert.strictEqual(fromMake.path, path)
      }
      const layer: Layer.Layer<Llm.LLM, SwitchboardConfigError.SwitchboardConfigError> = Llm.layerTest([]).pipe(
        CircuitBreaker.layer()
      )
      assert.isDefined(layer)
    }))

  it.effect("isOpen tells a router whether a call would be refused, without calling the provider", () =>
    Effect.gen(function*() {
      const { breaker, llm, test } = yield* setup({ failureThreshold: 1, cooldown: "10 seconds" }, [{ error: server() }])
      assert.isFalse(yield* CircuitBreaker.isOpen(breaker, "p", "m"))
      yield* outcome(llm)
      assert.isTrue(yield* CircuitBreaker.isOpen(breaker, "p", "m"))
      assert.isFalse(yield* breaker.isOpen("p", "other"))
      yield* TestClock.adjust("10 seconds")
      // past the cooldown a probe would be admitted
      assert.isFalse(yield* breaker.isOpen("p", "m"))
      assert.strictEqual((yield* test.requests).length, 1)
    }))

  it.effect("breakers with the same name share a BreakerStore in context: one opened is open for the other", () =>
    Effect.gen(function*() {
      const test = yield* scripted([{ error: server() }])
      const a = yield* CircuitBreaker.make({ failureThreshold: 1, name: "openai-leg" })
      const b = yield* CircuitBreaker.make({ failureThreshold: 1, name: "openai-leg" })
      const other = yield* CircuitBreaker.make({ failureThreshold: 1, name: "other" })
      yield* outcome(a.wrap(test.service))
      assert.strictEqual((yield* b.state("p", "m"))._tag, "Open")
      assert.strictEqual((yield* other.state("p", "m"))._tag, "Closed")
    }).pipe(Effect.provide(BreakerStore.layerMemory())))

  it.effect("a failing store follows onStoreError and publishes StoreDegraded", () =>
    Effect.gen(function*() {
      const events: Array<string> = []
      yield* Effect.forkChild(Stream.runForEach(Events.stream, (e) => Effect.sync(() => events.push(e._tag))))
      yield* Effect.yieldNow
      const broken: BreakerStore.BreakerStoreService = {
        admit: () => Effect.fail(new BreakerStore.BreakerStoreError({ detail: "down" })),
        record: () => Effect.fail(new BreakerStore.BreakerStoreError({ detail: "down" })),
        get: () => Effect.fail(new BreakerStore.BreakerStoreError({ detail: "down" }))
      }
      const test = yield* scripted([{ error: server() }, { text: "ok" }])
      const open = yield* CircuitBreaker.make({ failureThreshold: 1 }).pipe(
        Effect.provideService(BreakerStore.BreakerStore, broken)
      )
      const llm = open.wrap(test.service)
      assert.strictEqual(yield* outcome(llm), "ServerError") // recorded nowhere
      assert.strictEqual(yield* outcome(llm), "ok") // failOpen: admitted
      const closed = yield* CircuitBreaker.make({ failureThreshold: 1, onStoreError: "failClosed" }).pipe(
        Effect.provideService(BreakerStore.BreakerStore, broken)
      )
      const guarded = closed.wrap(test.service)
      yield* outcome(guarded) // learns the route
      assert.strictEqual(yield* outcome(guarded), "CircuitOpen")
      assert.isTrue(yield* closed.isOpen("p", "m"))
      yield* Effect.yieldNow
      assert.isTrue(events.includes("StoreDegraded"))
    }).pipe(Effect.provide(Events.layer())))
})
