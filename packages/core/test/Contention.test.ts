/**
 * What the chaos run under CPU contention found (issue 14): each fix, tested
 * where it lives. Under contention the stack must degrade, not collapse.
 */
import { assert, describe, it } from "@effect/vitest"
import { Clock, Duration, Effect, Fiber, Stream } from "effect"
import { TestClock } from "effect/testing"
import { CircuitBreaker, Deadline, Events, Fallback, LLM, Llm, LlmError, RateLimit } from "../src/index.ts"

const ask = { messages: [{ role: "user" as const, content: "hi" }] }
const getLlm = Effect.gen(function*() {
  return yield* LLM
})

describe("contention", () => {
  it.effect("RateLimit far below its limit never waits, at today's epoch milliseconds too (no timer per call)", () =>
    Effect.gen(function*() {
      // Fractions summed on epoch ms (~1.7e12) carry rounding noise; it used to come out as
      // waits of ~1e-5 ms, each a sleep: a timer and an event-loop turn on about every call.
      yield* TestClock.setTime(1_764_000_000_123)
      const test = yield* Llm.makeTest({ provider: "openai", model: "m", respond: () => ({ text: "ok" }) })
      const llm = yield* Effect.provide(
        getLlm,
        RateLimit.layer({ requests: { limit: 100_000, window: "1 second" }, onExceeded: "wait", maxWait: "5 seconds" })(
          test.layer
        )
      )
      const waited: Array<number> = []
      const fiber = yield* Effect.forkChild(
        Events.stream.pipe(
          Stream.runForEach((event) => Effect.sync(() => event._tag === "RateLimitWaited" && waited.push(event.waitedMs)))
        )
      )
      yield* Effect.yieldNow
      // 300 calls at three instants, without moving the clock past any wait: a call that
      // waited would never finish under the TestClock.
      const calls = yield* Effect.forkChild(
        Effect.forEach(Array.from({ length: 300 }, (_, i) => i), (i) =>
          Effect.andThen(
            i % 100 === 0 ? TestClock.adjust("1 millis") : Effect.void,
            llm.generate(ask)
          ), { discard: true })
      )
      yield* TestClock.adjust("3 millis")
      for (let i = 0; i < 10; i++) yield* Effect.yieldNow
      assert.isDefined(calls.pollUnsafe(), "every call under the limit finished without a wait")
      assert.deepStrictEqual(waited, [])
      assert.strictEqual((yield* test.requests).length, 300)
      yield* Fiber.interrupt(fiber)
    }).pipe(Effect.provide(Events.layer())))

  it.effect("Fallback: once the deadline has passed, the chain stops with the last error and calls no next child", () =>
    Effect.gen(function*() {
      const a = yield* Llm.makeTest({ provider: "a", model: "m", steps: [{ error: new LlmError.ServerError({ provider: "a", model: "m", status: 500 }), delay: "1500 millis" }] })
      const b = yield* Llm.makeTest({ provider: "b", model: "m", steps: [{ text: "b" }] })
      const llm = yield* Effect.provide(getLlm, Fallback.layer([a.layer, b.layer]))
      // The caller's deadline, without its timer: a's answer comes after it.
      const fiber = yield* Effect.forkChild(
        Effect.flip(llm.generate(ask)).pipe(
          Effect.provideService(Deadline.CurrentDeadline, 1_000)
        )
      )
      yield* TestClock.adjust("1500 millis")
      const error = yield* Fiber.join(fiber)
      assert.strictEqual(error._tag, "ServerError")
      assert.strictEqual((yield* b.requests).length, 0, "the next child was not called past the deadline")
    }))

  it.effect("Fallback streams: past the deadline the chain stops before the next child too", () =>
    Effect.gen(function*() {
      const a = yield* Llm.makeTest({ provider: "a", model: "m", steps: [{ error: new LlmError.Overloaded({ provider: "a", model: "m" }), delay: "1500 millis" }] })
      const b = yield* Llm.makeTest({ provider: "b", model: "m", steps: [{ text: "b" }] })
      const llm = yield* Effect.provide(getLlm, Fallback.layer([a.layer, b.layer]))
      const fiber = yield* Effect.forkChild(
        Effect.flip(Stream.runDrain(llm.stream(ask))).pipe(Effect.provideService(Deadline.CurrentDeadline, 1_000))
      )
      yield* TestClock.adjust("1500 millis")
      const error = yield* Fiber.join(fiber)
      assert.strictEqual(error._tag, "Overloaded")
      assert.strictEqual((yield* b.requests).length, 0)
    }))

  it.effect("Fallback before the deadline still moves on (the rule only acts once it has passed)", () =>
    Effect.gen(function*() {
      const a = yield* Llm.makeTest({ provider: "a", model: "m", steps: [{ error: new LlmError.ServerError({ provider: "a", model: "m", status: 500 }), delay: "500 millis" }] })
      const b = yield* Llm.makeTest({ provider: "b", model: "m", steps: [{ text: "b" }] })
      const llm = yield* Effect.provide(getLlm, Fallback.layer([a.layer, b.layer]))
      const fiber = yield* Effect.forkChild(llm.generate(ask).pipe(Effect.provideService(Deadline.CurrentDeadline, 1_000)))
      yield* TestClock.adjust("500 millis")
      assert.strictEqual((yield* Fiber.join(fiber)).text, "b")
    }))

  // Real time: starvation is a property of the real event loop (a TestClock does not move with it).
  it.live("CircuitBreaker: a Timeout while this process's event loop was blocked does not count; one on a free loop does", () =>
    Effect.gen(function*() {
      const timeout = new LlmError.Timeout({ provider: "p", model: "m", after: Duration.millis(100) })
      const blockFor = (ms: number) => {
        const end = performance.now() + ms
        while (performance.now() < end) { /* a CPU hog in this process */ }
      }
      // Starved: the call blocks the loop for 150 ms (timer ticks fire late), then times out.
      const starved = yield* CircuitBreaker.make({ failureThreshold: 1, cooldown: "1 minute" })
      const hog = starved.service(LLM.of({
        generate: () =>
          Effect.andThen(
            Effect.sleep("30 millis"),
            Effect.andThen(Effect.sync(() => blockFor(150)), Effect.andThen(Effect.sleep("30 millis"), Effect.fail(timeout)))
          ),
        stream: () => Stream.fail(timeout)
      }))
      yield* Effect.flip(hog.generate(ask))
      assert.strictEqual((yield* starved.state("p", "m"))._tag, "Closed", "a starved Timeout did not open the circuit")

      // Free: the same Timeout with the loop never blocked during the call: it counts. (At once,
      // so that no other load on the machine running the test can starve it meanwhile.)
      const free = yield* CircuitBreaker.make({ failureThreshold: 1, cooldown: "1 minute" })
      const slow = free.service(LLM.of({
        generate: () => Effect.fail(timeout),
        stream: () => Stream.fail(timeout)
      }))
      yield* Effect.flip(slow.generate(ask))
      assert.strictEqual((yield* free.state("p", "m"))._tag, "Open", "a Timeout on a free loop opened the circuit")

      // Other failures count whatever the loop did.
      const busy = yield* CircuitBreaker.make({ failureThreshold: 1, cooldown: "1 minute" })
      const failing = busy.service(LLM.of({
        generate: () =>
          Effect.andThen(
            Effect.andThen(Effect.sleep("30 millis"), Effect.sync(() => blockFor(150))),
            Effect.andThen(Effect.sleep("30 millis"), Effect.fail(new LlmError.ServerError({ provider: "p", model: "m", status: 500 })))
          ),
        stream: () => Stream.empty
      }))
      yield* Effect.flip(failing.generate(ask))
      assert.strictEqual((yield* busy.state("p", "m"))._tag, "Open")
    }))

  it.effect("a deadline answers Timeout at the deadline, without waiting for the interrupted call to wind down", () =>
    Effect.gen(function*() {
      let cleaned = false
      // A call whose interruption takes 5 s (under contention: aborts, closes and settles on a slow loop).
      const slowToStop = LLM.of({
        generate: () => Effect.onInterrupt(Effect.never, () => Effect.andThen(Effect.sleep("5 seconds"), Effect.sync(() => (cleaned = true)))),
        stream: () => Stream.never
      })
      const fiber = yield* Effect.forkChild(Effect.flip(Deadline.within("1 second")(slowToStop.generate(ask))))
      yield* TestClock.adjust("1 second")
      for (let i = 0; i < 10; i++) yield* Effect.yieldNow
      const exit = fiber.pollUnsafe()
      assert.isDefined(exit, "the caller has its answer at the deadline")
      assert.strictEqual((yield* Fiber.join(fiber))._tag, "Timeout")
      assert.isFalse(cleaned)
      // The interrupted call still winds down, in the background.
      yield* TestClock.adjust("5 seconds")
      for (let i = 0; i < 10; i++) yield* Effect.yieldNow
      assert.isTrue(cleaned)
    }))

  it.live("CircuitBreaker: a Timeout heard well after its deadline (this process's timers fire late) does not count", () =>
    Effect.gen(function*() {
      const timeout = new LlmError.Timeout({ provider: "p", model: "m", after: Duration.millis(30) })
      const breaker = yield* CircuitBreaker.make({ failureThreshold: 1, cooldown: "1 minute" })
      const llm = breaker.wrap(LLM.of({
        generate: () => Effect.andThen(Effect.sleep("300 millis"), Effect.fail(timeout)),
        stream: () => Stream.fail(timeout)
      }))
      // The deadline was 20 ms after the start; the Timeout arrives 280 ms after it.
      const now = yield* Clock.currentTimeMillis
      yield* Effect.flip(llm.generate(ask)).pipe(Effect.provideService(Deadline.CurrentDeadline, now + 20))
      assert.strictEqual((yield* breaker.state("p", "m"))._tag, "Closed")
    }))

  it.effect("CircuitBreaker: a Timeout of a call that started with less than half its deadline left does not count", () =>
    Effect.gen(function*() {
      const timeout = new LlmError.Timeout({ provider: "p", model: "m", after: Duration.seconds(1) })
      const inner = LLM.of({
        generate: () => Effect.andThen(Effect.sleep("200 millis"), Effect.fail(timeout)),
        stream: () => Stream.fail(timeout)
      })
      // Earlier tries took 800 ms of the 1 s deadline: this call had 200 ms.
      const short = yield* CircuitBreaker.make({ failureThreshold: 1, cooldown: "1 minute" })
      const late = yield* Effect.forkChild(
        Effect.flip(short.wrap(inner).generate(ask)).pipe(Effect.provideService(Deadline.CurrentDeadline, 200))
      )
      yield* TestClock.adjust("200 millis")
      yield* Fiber.join(late)
      assert.strictEqual((yield* short.state("p", "m"))._tag, "Closed")
      // The same Timeout for a call given the whole deadline counts.
      const whole = yield* CircuitBreaker.make({ failureThreshold: 1, cooldown: "1 minute" })
      const now = yield* Clock.currentTimeMillis
      const fair = yield* Effect.forkChild(
        Effect.flip(whole.wrap(inner).generate(ask)).pipe(Effect.provideService(Deadline.CurrentDeadline, now + 1_000))
      )
      yield* TestClock.adjust("200 millis")
      yield* Fiber.join(fair)
      assert.strictEqual((yield* whole.state("p", "m"))._tag, "Open")
    }))

  it.effect("CircuitBreaker under a TestClock: a Timeout counts as before (no starvation to judge)", () =>
    Effect.gen(function*() {
      const breaker = yield* CircuitBreaker.make({ failureThreshold: 1, cooldown: "1 minute" })
      const timeout = new LlmError.Timeout({ provider: "p", model: "m", after: Duration.seconds(1) })
      const llm = breaker.service(LLM.of({
        generate: () => Effect.andThen(Effect.sleep("1 second"), Effect.fail(timeout)),
        stream: () => Stream.fail(timeout)
      }))
      const fiber = yield* Effect.forkChild(Effect.flip(llm.generate(ask)))
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(fiber)
      assert.strictEqual((yield* breaker.state("p", "m"))._tag, "Open")
    }))
})
