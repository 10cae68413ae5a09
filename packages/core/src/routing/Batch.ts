/**
 * Many requests at once, with bounded concurrency: {@link generateAll} runs
 * them through the `LLM` in context, at most `concurrency` at a time, and
 * returns one `Result` per request in the order given — a failure is that
 * item's typed `LlmError`, never the whole batch's. A `BatchProgress` event
 * follows every finished item.
 *
 * @since 0.1.0
 */
import { Effect, Result, Schema } from "effect"
import * as Events from "../Events.ts"
import { generate, type LLM } from "../LLM.ts"
import type { LlmError } from "../LlmError.ts"
import type { LlmRequest } from "../LlmRequest.ts"
import type { LlmResponse } from "../LlmResponse.ts"
import * as SwitchboardConfigError from "../SwitchboardConfigError.ts"
import { PositiveInt } from "./internal/schemas.ts"

/**
 * Batch options.
 *
 * | option | default | meaning |
 * |---|---|---|
 * | `concurrency` | `4` | how many requests run at once (`"unbounded"` for all) |
 *
 * @since 0.1.0
 * @category models
 */
export const Options = Schema.Struct({
  concurrency: Schema.optional(Schema.Union([PositiveInt, Schema.Literal("unbounded")]))
})
/** @since 0.1.0 @category models */
export type Options = typeof Options.Type

/**
 * Generates a response for every request, at most `concurrency` at a time;
 * results are in the order of `requests`, each a `Result` holding the
 * response or the item's `LlmError`. Bad options fail with
 * `SwitchboardConfigError` before any request is sent.
 *
 * @example
 * ```ts
 * import { Effect, Result } from "effect"
 * import { Llm } from "@switchboard/core"
 * import { Batch } from "@switchboard/core"
 *
 * const program = Effect.gen(function*() {
 *   const results = yield* Batch.generateAll(
 *     ["one", "two", "three"].map((text) => ({ messages: [{ role: "user" as const, content: text }] })),
 *     { concurrency: 2 }
 *   )
 *   return results.map((r) => Result.isSuccess(r) ? r.success.text : r.failure._tag)
 * }).pipe(Effect.provide(Llm.layerTest([{ text: "ok" }])))
 * ```
 *
 * @since 0.1.0
 * @category accessors
 */
export const generateAll = (
  requests: Iterable<LlmRequest>,
  options: Options = {}
): Effect.Effect<
  ReadonlyArray<Result.Result<LlmResponse, LlmError>>,
  SwitchboardConfigError.SwitchboardConfigError,
  LLM
> =>
  Effect.gen(function*() {
    const decoded = yield* SwitchboardConfigError.decode("Batch", Options, options)
    const items = Array.from(requests)
    const total = items.length
    let done = 0
    let failed = 0
    return yield* Effect.forEach(
      items,
      (request) =>
        Effect.result(generate(request)).pipe(
          Effect.tap((result) => {
            done++
            if (Result.isFailure(result)) failed++
            const progress = { done, failed, total }
            return Events.publish(() => ({ _tag: "BatchProgress", ...progress }))
          })
        ),
      { concurrency: decoded.concurrency ?? 4 }
    )
  })
