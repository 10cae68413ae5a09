/**
 * An ordered chain of `LLM` layers: the first child is tried, and on a
 * failure another provider may cure (`LlmError.isFallbackable`, or the `on`
 * predicate), the next one is, until one answers.
 *
 * - `InvalidRequest` and `BudgetExceeded` stop the chain at once and fail with
 *   that error (they would fail anywhere).
 * - `ContextLengthExceeded` skips to the next child whose context window fits:
 *   the window is the child's `contextWindow` option, else the `Pricing`
 *   catalog's entry for the model that child last reported; a child whose
 *   window is unknown is just tried.
 * - Once the call's deadline (`Deadline`) has passed, the chain stops with
 *   the last error: a next child could only time out, and its breaker would
 *   count a timeout it never had the time to avoid.
 * - When every child failed: `AllProvidersFailed { provider: "fallback",
 *   attempts }` with every attempt of every child, retries included, in order.
 * - A successful response's `attempts` lists the failed attempts of earlier
 *   children first.
 * - Each switch is logged (`Effect.logInfo`, "fallback: from → to (reason)")
 *   and publishes `FallbackTaken`.
 * - With a tracer installed, each call is a `Fallback.generate` span holding
 *   the children's `Llm.attempt` spans, annotated with the `llm.provider` and
 *   `llm.model` that answered or the `llm.outcome` error tag (without one,
 *   the span is skipped: it would be built only to be dropped).
 *
 * Streams fall over freely until the first part reaches the caller. After
 * that the `midStream` policy decides:
 * - `"fail"` (default): fail with `StreamInterrupted { emittedText, reason }`.
 * - `"restart"`: run the request again on the next child and hide what the
 *   caller already has: the first N characters of the new child's text deltas
 *   are dropped, N being the length of the text already emitted (and the same
 *   for reasoning deltas). The new text is not compared with the old one, so
 *   the continuation is seamless only when both children write the same
 *   beginning. The `finish` response is the new child's, whole.
 * - `"continue"`: send the emitted text to the next child that accepts an
 *   assistant prefill (its `prefill` option, else the catalog's
 *   `capabilities.prefill` for the model it last reported; unknown counts as
 *   no) as a trailing `{ role: "assistant", content: emittedText }` message,
 *   and stream its continuation. The `finish` response's `text` (and first
 *   text part) is the emitted text followed by the continuation.
 * `"restart"` and `"continue"` act as `"fail"` when a tool call was already
 * streamed (a `tool-call-delta` was emitted), when the error stops chains, or
 * when no further child qualifies.
 *
 * Order: `Fallback` goes outside the per-provider `CircuitBreaker` and
 * `Retry` of each child — `Fallback ─> CircuitBreaker ─> Retry ─> provider` —
 * so a child's retries are spent (or its breaker is open) before the chain
 * moves on; `Budget`, `RateLimit` and `ResponseCache` go outside `Fallback`.
 *
 * @since 0.1.0
 */
import { Clock, Context, Effect, Layer, Stream } from "effect"
import * as Deadline from "../Deadline.ts"
import * as Events from "../Events.ts"
import {
  attemptsOfFailure,
  identityOf,
  isTraced,
  type Learned,
  learn,
  observed,
  observedStream,
  prepend,
  report
} from "../internal/attempts.ts"
import { LLM } from "../LLM.ts"
import { AllProvidersFailed, isFallbackable, type LlmError, StreamInterrupted } from "../LlmError.ts"
import type { LlmRequest } from "../LlmRequest.ts"
import type { Attempt, LlmResponse, StreamPart } from "../LlmResponse.ts"
import { Pricing, type PricingService } from "../money/Pricing.ts"

/**
 * A child given with what the chain should know about it.
 *
 * @since 0.1.0
 * @category models
 */
export interface Child<E = never, R = never> {
  readonly layer: Layer.Layer<LLM, E, R>
  /** Its context window in tokens (else looked up in `Pricing`). */
  readonly contextWindow?: number | undefined
  /** Whether its model accepts an assistant prefill (else looked up in `Pricing`). */
  readonly prefill?: boolean | undefined
  /** A name for logs and events before it has answered once (default `fallback#<index>`). */
  readonly name?: string | undefined
}

/**
 * A child: a plain `LLM` layer or a {@link Child}.
 *
 * @since 0.1.0
 * @category models
 */
export type ChildInput<E = never, R = never> = Layer.Layer<LLM, E, R> | Child<E, R>

/**
 * What happens when a stream fails after output reached the caller.
 *
 * @since 0.1.0
 * @category models
 */
export type MidStream = "fail" | "restart" | "continue"

/**
 * Fallback options.
 *
 * | option | default | meaning |
 * |---|---|---|
 * | `on` | `LlmError.isFallbackable` | which errors move to the next child (`InvalidRequest` and `BudgetExceeded` always stop) |
 * | `midStream` | `"fail"` | policy for a stream that fails after emitting output |
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly on?: ((error: LlmError) => boolean) | undefined
  readonly midStream?: MidStream | undefined
}

/**
 * A child as a built service.
 *
 * @since 0.1.0
 * @category models
 */
export interface ServiceChild {
  readonly service: LLM["Service"]
  readonly contextWindow?: number | undefined
  readonly prefill?: boolean | undefined
  readonly name?: string | undefined
}

const stops = (error: LlmError) => error._tag === "InvalidRequest" || error._tag === "BudgetExceeded"

const describe = (who: { readonly provider: string; readonly model: string }) => `${who.provider}/${who.model}`

/**
 * Builds the fallback `LLM` over already-built children.
 *
 * @since 0.1.0
 * @category constructors
 */
export const service = (children: ReadonlyArray<ServiceChild>, options: Options = {}): LLM["Service"] => {
  if (children.length === 0) throw new RangeError("Fallback: give at least one child")
  const midStream = options.midStream ?? "fail"
  if (midStream !== "fail" && midStream !== "restart" && midStream !== "continue") {
    throw new RangeError(`Fallback: option "midStream" must be "fail", "restart" or "continue", got ${String(midStream)}`)
  }
  const on = options.on ?? isFallbackable
  const learned: Array<Learned> = children.map(() => ({ current: undefined }))
  const nameOf = (i: number) => children[i]?.name ?? `fallback#${i}`
  const who = (i: number, request: LlmRequest) => identityOf(learned[i]!, nameOf(i), request)

  const windowOf = (i: number, pricing: PricingService): number | undefined => {
    const child = children[i]!
    if (child.contextWindow !== undefined) return child.contextWindow
    const id = learned[i]!.current
    return id === undefined ? undefined : pricing.lookup(id.provider, id.model)?.contextWindow
  }
  const prefillOf = (i: number, pricing: PricingService): boolean => {
    const child = children[i]!
    if (child.prefill !== undefined) return child.prefill
    const id = learned[i]!.current
    return id === undefined ? false : pricing.lookup(id.provider, id.model)?.capabilities.prefill ?? false
  }
  const needOf = (error: LlmError, before: number | undefined): number | undefined => {
    if (error._tag !== "ContextLengthExceeded") return before
    const need = error.requested ?? (error.limit === undefined ? undefined : error.limit + 1)
    return need === undefined ? before : Math.max(before ?? 0, need)
  }
  const nextChild = (
    from: number,
    need: number | undefined,
    pricing: PricingService,
    accept: (i: number) => boolean = () => true
  ): number | undefined => {
    for (let j = from + 1; j < children.length; j++) {
      const window = need === undefined ? undefined : windowOf(j, pricing)
      if (window !== undefined && need !== undefined && window < need) continue
      if (accept(j)) return j
    }
    return undefined
  }
  const switched = (request: LlmRequest, from: number, error: LlmError, to: number) =>
    Effect.gen(function*() {
      const a = { provider: error.provider, model: error.model ?? who(from, request).model }
      const b = who(to, request)
      yield* Effect.logInfo(`fallback: ${describe(a)} → ${describe(b)} (${error._tag})`).pipe(
        Effect.annotateLogs({ "fallback.from": describe(a), "fallback.to": describe(b), "fallback.reason": error._tag })
      )
      yield* Events.publish(() => ({ _tag: "FallbackTaken", from: a, to: b, reason: error._tag }))
    })
  const exhausted = (request: LlmRequest, attempts: ReadonlyArray<Attempt>) =>
    Effect.andThen(
      report(attempts),
      Effect.fail(new AllProvidersFailed({ provider: "fallback", ...(request.model ? { model: request.model } : {}), attempts }))
    )

  const span = Effect.withSpan("Fallback.generate")
  const outcome = (error: LlmError) => Effect.annotateCurrentSpan({ "llm.outcome": error._tag })

  const generate = (request: LlmRequest): Effect.Effect<LlmResponse, LlmError> =>
    Effect.withFiber((fiber) => {
      const pricing = fiber.getRef(Pricing)
      const clock = fiber.getRef(Clock.Clock)
      // The chain's span only when a tracer is installed: without one it would go nowhere.
      const traced = isTraced(fiber)
      const failed: Array<Attempt> = []
      let need: number | undefined
      const tryChild = (i: number): Effect.Effect<LlmResponse, LlmError> => {
        const start = clock.currentTimeMillisUnsafe()
        const { cell, effect } = observed(children[i]!.service.generate(request))
        return Effect.matchEffect(effect, {
          onSuccess: (response) => {
            learn(learned[i]!, response)
            const result = Effect.succeed(prepend(response, failed))
            return traced
              ? Effect.andThen(
                Effect.annotateCurrentSpan({ "llm.provider": response.provider, "llm.model": response.model }),
                result
              )
              : result
          },
          onFailure: (error) => {
            const now = clock.currentTimeMillisUnsafe()
            learn(learned[i]!, error)
            failed.push(...attemptsOfFailure(cell, error, request, now - start))
            if (stops(error) || !on(error)) return Effect.andThen(report(failed), Effect.fail(error))
            // The deadline has passed: a next child could only time out, so the chain stops here.
            const deadline = fiber.getRef(Deadline.CurrentDeadline)
            if (deadline !== undefined && now >= deadline) return Effect.andThen(report(failed), Effect.fail(error))
            need = needOf(error, need)
            const next = nextChild(i, need, pricing)
            if (next === undefined) return exhausted(request, failed)
            return Effect.andThen(switched(request, i, error, next), Effect.suspend(() => tryChild(next)))
          }
        })
      }
      return traced ? span(Effect.tapError(tryChild(0), outcome)) : tryChild(0)
    })

  const stream = (request: LlmRequest): Stream.Stream<StreamPart, LlmError> =>
    Stream.unwrap(Effect.map(Pricing, (pricing) => {
      const failed: Array<Attempt> = []
      let need: number | undefined
      let emittedText = ""
      let emittedReasoning = ""
      let emitted = false
      let toolOpen = false
      interface Mode {
        readonly skipText: number
        readonly skipReasoning: number
        readonly prefix: string | undefined
      }
      const plain: Mode = { skipText: 0, skipReasoning: 0, prefix: undefined }
      const interrupted = (error: LlmError) =>
        Effect.andThen(
          report(failed),
          Effect.fail(
            new StreamInterrupted({
              provider: error.provider,
              ...(error.model !== undefined ? { model: error.model } : {}),
              emittedText,
              reason: error._tag
            })
          )
        )
      const run = (i: number, mode: Mode): Stream.Stream<StreamPart, LlmError> =>
        Stream.unwrap(Effect.map(Clock.currentTimeMillis, (start) => {
          const child = children[i]!
          const childRequest: LlmRequest = mode.prefix === undefined
            ? request
            : { ...request, messages: [...request.messages, { role: "assistant", content: mode.prefix }] }
          const { cell, stream } = observedStream(child.service.stream(childRequest))
          let skipText = mode.skipText
          let skipReasoning = mode.skipReasoning
          const shown = (part: StreamPart): StreamPart | undefined => {
            switch (part.type) {
              case "text-delta": {
                let text = part.text
                if (skipText > 0) {
                  const cut = Math.min(skipText, text.length)
                  skipText -= cut
                  text = text.slice(cut)
                  if (text.length === 0) return undefined
                }
                emittedText += text
                emitted = true
                return text === part.text ? part : { type: "text-delta", text }
              }
              case "reasoning-delta": {
                let text = part.text
                if (skipReasoning > 0) {
                  const cut = Math.min(skipReasoning, text.length)
                  skipReasoning -= cut
                  text = text.slice(cut)
                  if (text.length === 0) return undefined
                }
                emittedReasoning += text
                emitted = true
                return text === part.text ? part : { type: "reasoning-delta", text }
              }
              case "tool-call-delta":
                toolOpen = true
                emitted = true
                return part
              case "finish": {
                learn(learned[i]!, part.response)
                let response = prepend(part.response, failed)
                if (mode.prefix !== undefined) {
                  const prefix = mode.prefix
                  const [first, ...rest] = response.content
                  const content = first !== undefined && first.type === "text"
                    ? [{ ...first, text: prefix + first.text }, ...rest]
                    : [{ type: "text" as const, text: prefix }, ...response.content]
                  response = { ...response, text: prefix + response.text, content }
                }
                return { type: "finish", response }
              }
            }
          }
          return stream.pipe(
            Stream.map(shown),
            Stream.filter((part): part is StreamPart => part !== undefined),
            Stream.catch((error: LlmError) =>
              Stream.unwrap(Effect.gen(function*() {
                const now = yield* Clock.currentTimeMillis
                learn(learned[i]!, error)
                failed.push(...attemptsOfFailure(cell, error, childRequest, now - start))
                if (!emitted) {
                  if (stops(error) || !on(error)) return yield* Effect.andThen(report(failed), Effect.fail(error))
                  // The deadline has passed: a next child could only time out, so the chain stops here.
                  const deadline = yield* Deadline.CurrentDeadline
                  if (deadline !== undefined && now >= deadline) return yield* Effect.andThen(report(failed), Effect.fail(error))
                  need = needOf(error, need)
                  const next = nextChild(i, need, pricing)
                  if (next === undefined) return yield* exhausted(request, failed)
                  yield* switched(request, i, error, next)
                  return run(next, plain)
                }
                if (midStream === "fail" || toolOpen || stops(error) || !on(error)) return yield* interrupted(error)
                const next = midStream === "restart"
                  ? nextChild(i, undefined, pricing)
                  : nextChild(i, undefined, pricing, (j) => prefillOf(j, pricing))
                if (next === undefined) return yield* interrupted(error)
                yield* switched(request, i, error, next)
                return run(
                  next,
                  midStream === "restart"
                    ? { skipText: emittedText.length, skipReasoning: emittedReasoning.length, prefix: undefined }
                    : { skipText: 0, skipReasoning: 0, prefix: emittedText }
                )
              }))
            )
          )
        }))
      return run(0, plain)
    }))

  return LLM.of({ generate, stream })
}

type ErrorOf<C> = C extends Layer.Layer<LLM, infer E, infer _R> ? E : C extends Child<infer E, infer _R> ? E : never
type ContextOf<C> = C extends Layer.Layer<LLM, infer _E, infer R> ? R : C extends Child<infer _E, infer R> ? R : never

/**
 * A fallback chain over `children`, tried in order (see the module docs).
 *
 * @example
 * ```ts
 * const Stack = Fallback.layer([
 *   OpenAI.model("gpt-4o-mini").pipe(Retry.layer({ times: 2 }), CircuitBreaker.layer({ failureThreshold: 5 })),
 *   { layer: Anthropic.model("claude-3-5-haiku-latest"), contextWindow: 200_000, prefill: true }
 * ], { midStream: "continue" })
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = <const Children extends ReadonlyArray<ChildInput<any, any>>>(
  children: Children,
  options: Options = {}
): Layer.Layer<LLM, ErrorOf<Children[number]>, ContextOf<Children[number]>> => {
  const inputs = children.map((child): Child<any, any> => Layer.isLayer(child) ? { layer: child } : child as Child<any, any>)
  // validate the options where they are written
  service(inputs.map(() => ({ service: LLM.of({ generate: () => Effect.never, stream: () => Stream.never }) })), options)
  return Layer.effect(
    LLM,
    Effect.gen(function*() {
      const built: Array<ServiceChild> = []
      for (const input of inputs) {
        const context = yield* Layer.build(input.layer)
        built.push({
          service: Context.get(context, LLM),
          contextWindow: input.contextWindow,
          prefill: input.prefill,
          name: input.name
        })
      }
      return service(built, options)
    })
  ) as Layer.Layer<LLM, any, any>
}
