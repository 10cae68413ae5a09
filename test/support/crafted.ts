/**
 * What the four provider packages' "trust nothing a provider sends" tests
 * share: one call through a leaf against a crafted loopback server, and the
 * assertion that it ended in a typed `MalformedResponse`.
 */
import { assert } from "@effect/vitest"
import { CostLedger, type LLM, Llm, LlmError, type LlmRequest } from "@switchboard/core"
import { Crafted } from "@switchboard/sim"
import { Effect, Exit, Layer } from "effect"

/**
 * Serves `reply` on a crafted server, calls `request` through the leaf
 * `modelAt(url)` builds, and returns how the call ended with what the cost
 * ledger recorded.
 */
export const generateAgainst = (modelAt: (url: string) => Layer.Layer<LLM>, request: LlmRequest.LlmRequest) =>
(reply: Crafted.Reply) =>
  Effect.gen(function*() {
    const server = yield* Crafted.serve(() => reply)
    return yield* Effect.gen(function*() {
      const exit = yield* Effect.exit(Llm.generate(request))
      const totals = (yield* CostLedger.snapshot).total
      return { exit, totals }
    }).pipe(Effect.provide(Layer.merge(modelAt(server.url), CostLedger.layer)))
  })

/** Asserts that `exit` is a typed failure (not a defect) with a `MalformedResponse` whose detail mentions `mentions`. */
export const assertMalformed = (exit: Exit.Exit<unknown, LlmError.LlmError>, mentions: string): void => {
  assert.isTrue(Exit.isFailure(exit), "expected a failure")
  const reason = Exit.isFailure(exit) ? exit.cause.reasons[0] : undefined
  assert.strictEqual(reason?._tag, "Fail", `a typed failure, not a defect: ${String(reason)}`)
  const failure = (reason as { error: LlmError.LlmError }).error
  assert.instanceOf(failure, LlmError.MalformedResponse, String(failure))
  assert.include((failure as LlmError.MalformedResponse).detail, mentions)
}

/**
 * Asserts that SDK retries are off: each of `replies` (errors an SDK would
 * retry, e.g. a 500 or a 429 with `retry-after: 0`) reaches the server once.
 */
export const assertNoSdkRetries = (
  modelAt: (url: string) => Layer.Layer<LLM>,
  request: LlmRequest.LlmRequest,
  replies: ReadonlyArray<Crafted.Reply>
) =>
  Effect.gen(function*() {
    for (const reply of replies) {
      const server = yield* Crafted.serve(() => reply)
      yield* Effect.flip(Llm.generate(request).pipe(Effect.provide(modelAt(server.url))))
      assert.strictEqual(server.received.length, 1, `status ${reply.status}`)
    }
  })

/**
 * Asserts that a call to a port nothing listens on (a crafted server whose
 * scope already closed) fails with `NetworkError { cause: "refused" }`, and
 * returns the error and that server's URL.
 */
export const assertRefused = (modelAt: (url: string) => Layer.Layer<LLM>, request: LlmRequest.LlmRequest) =>
  Effect.gen(function*() {
    const server = yield* Effect.scoped(Crafted.serve(() => ({ json: {} })))
    const error = yield* Effect.flip(Llm.generate(request).pipe(Effect.provide(modelAt(server.url))))
    assert.instanceOf(error, LlmError.NetworkError)
    assert.strictEqual((error as LlmError.NetworkError).cause, "refused")
    return { error: error as LlmError.NetworkError, url: server.url }
  })
