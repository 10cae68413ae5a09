import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { Budget, LLM, Llm, RateLimit, ResponseCache } from "../src/index.ts"

/** Builds the layer and returns the build error's `path: message` lines (or "built"). */
const buildError = <E, R>(layer: Layer.Layer<LLM, E, R>) =>
  Effect.gen(function*() {
    const exit = yield* Effect.exit(Effect.scoped(Layer.build(layer)))
    if (exit._tag === "Success") return "built"
    const failure = exit.cause.reasons.find((reason) => reason._tag === "Fail")
    const error = failure?.error as { readonly _tag?: string; readonly summary?: string; readonly path?: string } | undefined
    assert.strictEqual(error?._tag, "SwitchboardConfigError")
    return error?.summary ?? ""
  })

const leaf = Llm.layerTest([{ text: "hi" }])

describe("bad options are refused at build, naming the option", () => {
  it.effect("Budget", () =>
    Effect.gen(function*() {
      const cases: ReadonlyArray<readonly [Budget.Options, string]> = [
        [{ limitUsd: Number.NaN, window: "day" }, "Budget.limitUsd: expected a finite number ≥ 0, got NaN"],
        [{ limitUsd: -1, window: "day" }, "Budget.limitUsd: expected a finite number ≥ 0, got -1"],
        [{ limitUsd: Infinity, window: "day" }, "Budget.limitUsd: expected a finite number ≥ 0, got Infinity"],
        [{ limitUsd: 1, window: "0 millis" }, "Budget.window"],
        [{ limitUsd: 1, window: "fortnight" as "day" }, "Budget.window"],
        [{ limitUsd: 1, window: "day", softAt: 1.5 }, "Budget.softAt: expected a number in (0, 1], got 1.5"],
        [{ limitUsd: 1, window: "day", attempts: 0 }, "Budget.attempts: expected an integer ≥ 1, got 0"],
        [{ limitUsd: 1, window: "day", thinkingTokens: -5 }, "Budget.thinkingTokens: expected an integer ≥ 0, got -5"],
        [{ limitUsd: 1, window: "day", reservationTtl: "-1 seconds" }, "Budget.reservationTtl"],
        [{ limitUsd: 1, window: "day", maxScopes: 0 }, "Budget.maxScopes: expected an integer ≥ 1, got 0"],
        [{ limitUsd: 1, window: "day", scope: "tenant" as never }, "Budget.scope: expected a function"],
        [{ limitUsd: 1, window: "day", price: { provider: "openai" } as never }, "Budget.price.model"],
        [{ limitUsd: 1, window: "day", count: "approximate" as never }, "Budget.count"]
      ]
      for (const [options, expected] of cases) {
        const summary = yield* buildError(leaf.pipe(Budget.layer(options)))
        assert.include(summary, expected, JSON.stringify(options))
        // make refuses the same way, before anything runs.
        const made = yield* Effect.flip(Budget.make(options))
        assert.include(made.summary, expected)
      }
      assert.strictEqual(yield* buildError(leaf.pipe(Budget.layer({ limitUsd: 0, window: "1 hour" }))), "built")
    }))

  it.effect("RateLimit", () =>
    Effect.gen(function*() {
      const cases: ReadonlyArray<readonly [RateLimit.Options, string]> = [
        [{ requests: { limit: 0, window: "1 minute" }, onExceeded: "fail" }, "RateLimit.requests.limit: expected an integer ≥ 1, got 0"],
        [{ requests: { limit: -3, window: "1 minute" }, onExceeded: "fail" }, "RateLimit.requests.limit: expected an integer ≥ 1, got -3"],
        [{ tokens: { limit: Number.NaN, window: "1 minute" }, onExceeded: "fail" }, "RateLimit.tokens.limit: expected an integer ≥ 1, got NaN"],
        [{ requests: { limit: 5, window: "0 seconds" }, onExceeded: "fail" }, "RateLimit.requests.window: expected a finite duration > 0"],
        [{ requests: { limit: 5, window: "soon" as "1 minute" }, onExceeded: "fail" }, "RateLimit.requests.window: expected a finite duration > 0, got \"soon\""],
        [{ requests: { limit: 5, window: "1 minute" }, onExceeded: "drop" as "fail" }, "RateLimit.onExceeded"],
        [{ requests: { limit: 5, window: "1 minute" }, onExceeded: "wait", maxWait: -10 }, "RateLimit.maxWait: expected a duration ≥ 0, got -10"],
        [{ requests: { limit: 5, window: "1 minute" }, onExceeded: "wait", outputReserve: -1 }, "RateLimit.outputReserve"],
        [{ requests: { limit: 5, window: "1 minute" }, onExceeded: "wait", maxKeys: 0 }, "RateLimit.maxKeys"],
        [{ onExceeded: "fail" }, "expected requests or tokens"]
      ]
      for (const [options, expected] of cases) {
        const summary = yield* buildError(leaf.pipe(RateLimit.layer(options)))
        assert.include(summary, expected, JSON.stringify(options))
      }
    }))

  it.effect("ResponseCache", () =>
    Effect.gen(function*() {
      const cases: ReadonlyArray<readonly [ResponseCache.Options, string]> = [
        [{ capacity: -1, ttl: "1 hour" }, "ResponseCache.capacity: expected an integer ≥ 1, got -1"],
        [{ capacity: 1.5, ttl: "1 hour" }, "ResponseCache.capacity: expected an integer ≥ 1, got 1.5"],
        [{ capacity: 10, ttl: "0 millis" }, "ResponseCache.ttl: expected a duration > 0"],
        [{ capacity: 10, ttl: "an hour" as "1 hour" }, "ResponseCache.ttl: expected a duration > 0, got \"an hour\""],
        [{ capacity: 10, ttl: "1 hour", when: "sometimes" as "always" }, "ResponseCache.when"]
      ]
      for (const [options, expected] of cases) {
        const summary = yield* buildError(leaf.pipe(ResponseCache.layer(options)))
        assert.include(summary, expected, JSON.stringify(options))
      }
    }))
})
