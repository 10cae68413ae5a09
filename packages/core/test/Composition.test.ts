import { assert, describe, it } from "@effect/vitest"
import { Cause, Duration, Effect, Exit, Fiber, Layer, Stream } from "effect"
import { TestClock } from "effect/testing"
import * as fc from "fast-check"
import { CircuitBreaker, Events, Fallback, Hedge, Llm, LlmError, Retry, SwitchboardConfigError } from "../src/index.ts"

const ask = { messages: [{ role: "user" as const, content: "hi" }] }

describe("composed stacks", () => {
  it.effect("publish their events in order: attempt, failure, retry, fallback, attempt", () =>
    Effect.gen(function*() {
      const events: Array<string> = []
      yield* Effect.forkChild(Stream.runForEach(Events.stream, (e) => Effect.sync(() => events.push(e._tag))))
      yield* Effect.yieldNow
      const a = yield* Llm.makeTest({ provider: "a", model: "m", steps: [{ error: new LlmError.ServerError({ provider: "a", model: "m", status: 500 }) }] })
      const b = yield* Llm.makeTest({ provider: "b", model: "m", steps: [{ text: "b" }] })
      const stack = Fallback.layer([
        a.layer.pipe(Retry.layer({ times: 1, base: "10 millis", jitter: false }), CircuitBreaker.layer({ failureThreshold: 1 })),
        b.layer
      ])
      const fiber = yield* Effect.forkChild(Llm.generate(ask).pipe(Effect.provide(stack)))
      yield* TestClock.adjust("10 millis")
      const response = yield* Fiber.join(fiber)
      yield* Effect.yieldNow
      assert.deepStrictEqual(events, [
        "AttemptStarted",
        "AttemptFailed",
        "RetryScheduled",
        "AttemptStarted",
        "AttemptFailed",
        "CircuitStateChanged",
        "FallbackTaken",
        "AttemptStarted"
      ])
      assert.deepStrictEqual(response.attempts.map((x) => `${x.provider}:${x.outcome}`), ["a:ServerError", "a:ServerError", "b:ok"])
    }).pipe(Effect.provide(Events.layer())))

  it.effect("interrupting a composed call leaves no provider call running", () =>
    Effect.gen(function*() {
      const slow = (provider: string) => Llm.makeTest({ provider, steps: [{ text: provider, delay: "10 seconds" }] })
      const a = yield* slow("a")
      const b = yield* slow("b")
      const c = yield* slow("c")
      const stack = Fallback.layer([
        a.layer.pipe(Retry.layer(), Hedge.layer({ after: "1 second", backup: b.layer }), CircuitBreaker.layer()),
        c.layer
      ])
      const fiber = yield* Effect.forkChild(Llm.generate(ask).pipe(Effect.provide(stack)))
      yield* TestClock.adjust("2 seconds")
      yield* Fiber.interrupt(fiber)
      const started = (yield* a.requests).length + (yield* b.requests).length
      assert.strictEqual(started, 2)
      assert.strictEqual((yield* a.interrupted) + (yield* b.interrupted), 2)
      assert.strictEqual((yield* a.completed) + (yield* b.completed), 0)
      // nothing finishes later either
      yield* TestClock.adjust("1 minute")
      assert.strictEqual((yield* a.completed) + (yield* b.completed) + (yield* c.completed), 0)
    }))

  it.effect("interrupting a composed stream cancels the provider stream", () =>
    Effect.gen(function*() {
      const a = yield* Llm.makeTest({ provider: "a", steps: [{ text: "abc", chunks: ["a", "b", "c"], chunkDelay: "1 second" }] })
      const stack = Fallback.layer([a.layer.pipe(Retry.layer(), CircuitBreaker.layer())], { midStream: "restart" })
      const fiber = yield* Effect.forkChild(Stream.runCollect(Llm.stream(ask)).pipe(Effect.provide(stack)))
      yield* TestClock.adjust("1500 millis")
      yield* Fiber.interrupt(fiber)
      assert.strictEqual(yield* a.interrupted, 1)
    }))
})

// ---------------------------------------------------------------------------
// Property: random stacks over random faults end in a success or a typed LlmError
// ---------------------------------------------------------------------------

type Fault =
  | { readonly kind: "ok"; readonly delay: number }
  | { readonly kind: "error"; readonly tag: "ServerError" | "RateLimited" | "InvalidRequest" | "AuthenticationFailed" | "ContextLengthExceeded" | "Overloaded"; readonly delay: number; readonly chunks: number }
  | { readonly kind: "cut"; readonly delay: number }

type Stack =
  | { readonly kind: "leaf"; readonly faults: ReadonlyArray<Fault> }
  | { readonly kind: "retry"; readonly inner: Stack }
  | { readonly kind: "breaker"; readonly inner: Stack }
  | { readonly kind: "fallback"; readonly children: ReadonlyArray<Stack>; readonly midStream: Fallback.MidStream }
  | { readonly kind: "hedge"; readonly primary: Stack; readonly backup: Stack }

const fault: fc.Arbitrary<Fault> = fc.oneof(
  fc.record({ kind: fc.constant("ok" as const), delay: fc.integer({ min: 0, max: 3000 }) }),
  fc.record({
    kind: fc.constant("error" as const),
    tag: fc.constantFrom("ServerError", "RateLimited", "InvalidRequest", "AuthenticationFailed", "ContextLengthExceeded", "Overloaded"),
    delay: fc.integer({ min: 0, max: 3000 }),
    chunks: fc.integer({ min: 0, max: 2 })
  }),
  fc.record({ kind: fc.constant("cut" as const), delay: fc.integer({ min: 0, max: 3000 }) })
)

const { stack } = fc.letrec<{ stack: Stack }>((tie) => ({
  stack: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.record({ kind: fc.constant("leaf" as const), faults: fc.array(fault, { minLength: 1, maxLength: 4 }) }),
    fc.record({ kind: fc.constant("retry" as const), inner: tie("stack") }),
    fc.record({ kind: fc.constant("breaker" as const), inner: tie("stack") }),
    fc.record({
      kind: fc.constant("fallback" as const),
      children: fc.array(tie("stack"), { minLength: 1, maxLength: 3 }),
      midStream: fc.constantFrom("fail" as const, "restart" as const, "continue" as const)
    }),
    fc.record({ kind: fc.constant("hedge" as const), primary: tie("stack"), backup: tie("stack") })
  )
}))

const errorOf = (tag: Extract<Fault, { kind: "error" }>["tag"], provider: string): LlmError.LlmError => {
  switch (tag) {
    case "ServerError":
      return new LlmError.ServerError({ provider, model: "m", status: 500 })
    case "RateLimited":
      return new LlmError.RateLimited({ provider, model: "m", scope: "requests", source: "provider", retryAfter: Duration.millis(700) })
    case "InvalidRequest":
      return new LlmError.InvalidRequest({ provider, model: "m", message: "bad" })
    case "AuthenticationFailed":
      return new LlmError.AuthenticationFailed({ provider, model: "m" })
    case "ContextLengthExceeded":
      return new LlmError.ContextLengthExceeded({ provider, model: "m", limit: 10, requested: 20 })
    case "Overloaded":
      return new LlmError.Overloaded({ provider, model: "m" })
  }
}

const build = (s: Stack, leaves: Array<Llm.TestLlm>): Effect.Effect<Layer.Layer<Llm.LLM, SwitchboardConfigError.SwitchboardConfigError>> =>
  Effect.gen(function*() {
    switch (s.kind) {
      case "leaf": {
        const provider = `leaf${leaves.length}`
        const steps = s.faults.map((f): Llm.TestStep =>
          f.kind === "ok"
            ? { text: "hello there", chunks: ["hello", " there"], delay: Duration.millis(f.delay) }
            : f.kind === "cut"
            ? { cut: ["hel"], delay: Duration.millis(f.delay) }
            : { error: errorOf(f.tag, provider), chunks: ["hel", "lo"].slice(0, f.chunks), delay: Duration.millis(f.delay) }
        )
        const test = yield* Llm.makeTest({ provider, model: "m", steps })
        leaves.push(test)
        return test.layer
      }
      case "retry":
        return (yield* build(s.inner, leaves)).pipe(Retry.layer({ times: 2, base: "200 millis", max: "1 second" }))
      case "breaker":
        return (yield* build(s.inner, leaves)).pipe(CircuitBreaker.layer({ failureThreshold: 2, cooldown: "1 second" }))
      case "fallback": {
        const children: Array<Fallback.ChildInput<SwitchboardConfigError.SwitchboardConfigError>> = []
        for (const child of s.children) children.push({ layer: yield* build(child, leaves), prefill: true })
        return Fallback.layer(children, { midStream: s.midStream })
      }
      case "hedge": {
        const primary = yield* build(s.primary, leaves)
        const backup = yield* build(s.backup, leaves)
        return primary.pipe(Hedge.layer({ after: "500 millis", backup }))
      }
    }
  })

describe("property", () => {
  it.effect("any stack over any faults ends in a success or a typed LlmError: never a defect, never a hang", () =>
    Effect.gen(function*() {
      const samples = fc.sample(fc.tuple(stack, fc.boolean(), fc.integer({ min: 1, max: 3 })), { numRuns: 150, seed: 20240601 })
      for (const [shape, streaming, calls] of samples) {
        const leaves: Array<Llm.TestLlm> = []
        const layer = yield* build(shape, leaves)
        const context = yield* Layer.build(layer)
        for (let call = 0; call < calls; call++) {
          const run = streaming
            ? Effect.asVoid(Stream.runCollect(Llm.stream(ask)))
            : Effect.asVoid(Llm.generate(ask))
          const fiber = yield* Effect.forkChild(Effect.provide(run, context))
          let steps = 0
          while (fiber.pollUnsafe() === undefined && steps < 1200) {
            yield* TestClock.adjust("500 millis")
            steps++
          }
          const exit = fiber.pollUnsafe()
          const where = JSON.stringify({ shape, streaming, call })
          assert.isDefined(exit, `hung: ${where}`)
          if (exit !== undefined && Exit.isFailure(exit)) {
            assert.isFalse(Cause.hasDies(exit.cause), `defect: ${Cause.pretty(exit.cause)} in ${where}`)
            const error = exit.cause.reasons.find((r) => r._tag === "Fail")
            assert.isTrue(error !== undefined && error._tag === "Fail" && LlmError.isLlmError(error.error), `untyped failure in ${where}: ${Cause.pretty(exit.cause)}`)
          }
        }
      }
    }), 20_000)
})
