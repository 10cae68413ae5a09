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
 * - `"restart"` — **LIMITATION: the caller may receive text that does not
 *   match the final answer.** It runs the request again on the next child and
 *   hides what the caller already has by dropping the first N characters of
 *   the new child's text deltas, N being the length of the text already
 *   emitted (and the same for reasoning deltas). The new text is NOT compared
 *   with the old one: the stitched stream is coherent only when both children
 *   happen to write the same beginning, and the `finish` response is the new
 *   child's, whole (its `text` may differ from what was streamed). Use it only
 *   for deterministic prompts (temperature 0, same model family); prefer
 *   `"continue"` or `"fail"` otherwise.
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
 * Options and children are checked when the layer is built: an empty chain,
 * an unknown `midStream` or a bad child option fails it with
 * `SwitchboardConfigError` (`Fallback.midStream`, `Fallback.children[1].contextWindow`).
 *
 * Order: `Fallback` goes outside the per-provider `CircuitBreaker` and
 * `Retry` of each child — `Fallback ─> CircuitBreaker ─> Retry ─> provider` —
 * so a child's retries are spent (or its breaker is open) before the chain
 * moves on; `Budget`, `RateLimit` and `ResponseCache` go outside `Fallback`.
 *
 * @since 0.1.0
 */
import { Clock, Context, Effect, type Fiber, Layer, Result, Schema, Stream } from "effect"
import * as Deadline from "../Deadline.ts"
import * as Events from "../Events.ts"
import * as Telemetry from "../telemetry/Telemetry.ts"
import {
  attemptsOfFailure,
  catchChild,
  type ChildFailure,
  failWith,
  identityOf,
  isTraced,
  type Learned,
  learn,
  prepend,
  type StreamTry,
  tryStreamWith
} from "../internal/attempts.ts"
import { Fn, IntAtLeast, orThrow } from "../internal/optionSchemas.ts"
import { LLM } from "../LLM.ts"
import { AllProvidersFailed, isFallbackable, type LlmError, StreamInterrupted } from "../LlmError.ts"
import type { LlmRequest } from "../LlmRequest.ts"
import type { Attempt, LlmResponse, StreamPart } from "../LlmResponse.ts"
import { Pricing, type PricingService } from "../money/Pricing.ts"
import * as SwitchboardConfigError from "../SwitchboardConfigError.ts"

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
 * The error type of a child (a layer or a {@link Child}).
 *
 * @since 0.1.0
 * @category models
 */
export type ErrorOf<C> = C extends Layer.Layer<LLM, infer E, infer _R> ? E : C extends Child<infer E, infer _R> ? E : never

/**
 * The requirement type of a child (a layer or a {@link Child}).
 *
 * @since 0.1.0
 * @category models
 */
export type ContextOf<C> = C extends Layer.Layer<LLM, infer _E, infer R> ? R : C extends Child<infer _E, infer R> ? R : never

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
 * | `midStream` | `"fail"` | policy for a stream that fails after emitting output: `"fail"`, `"continue"`, or `"restart"` — **restart may show the caller text that differs from the final answer** (see the module docs) |
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly on?: ((error: LlmError) => boolean) | undefined
  /**
   * What a stream does when it fails after output reached the caller.
   * `"restart"` has a LIMITATION: the replacement's first characters are
   * dropped blindly, so what the caller saw can differ from the final answer.
   */
  readonly midStream?: MidStream | undefined
}

/**
 * The Schema of {@link Options}, decoded when the chain is built.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Options = Schema.Struct({
  on: Schema.optional(Fn<(error: LlmError) => boolean>("a predicate function")),
  midStream: Schema.optional(Schema.Literals(["fail", "restart", "continue"]))
})

/**
 * The Schema of what is known about a child (its `layer` or `service` is
 * checked apart).
 *
 * @since 0.1.0
 * @category schemas
 */
export const ChildOptions = Schema.Struct({
  contextWindow: Schema.optional(IntAtLeast(1)),
  prefill: Schema.optional(Schema.Boolean),
  name: Schema.optional(Schema.String)
})

const Children = Schema.Array(ChildOptions).check(
  Schema.makeFilter((children: ReadonlyArray<unknown>) =>
    children.length > 0 || "expected at least one child, got an empty chain"
  )
)

const decodeAll = (
  children: ReadonlyArray<{ readonly contextWindow?: number | undefined; readonly prefill?: boolean | undefined; readonly name?: string | undefined }>,
  options: Options
): Result.Result<void, SwitchboardConfigError.SwitchboardConfigError> => {
  const known = children.map((child) => {
    const { contextWindow, name, prefill } = child
    return {
      ...(contextWindow !== undefined ? { contextWindow } : {}),
      ...(prefill !== undefined ? { prefill } : {}),
      ...(name !== undefined ? { name } : {})
    }
  })
  const a = SwitchboardConfigError.decodeSync("Fallback.children", Children, known)
  const b = SwitchboardConfigError.decodeSync("Fallback", Options, options)
  const issues = [
    ...(Result.isFailure(a) ? a.failure.issues ?? [a.failure] : []),
    ...(Result.isFailure(b) ? b.failure.issues ?? [b.failure] : [])
  ]
  return issues.length === 0 ? Result.succeed(undefined) : Result.fail(SwitchboardConfigError.fromIssues(issues))
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
 * Builds the fallback `LLM` over already-built children after checking them
 * and `options` (a bad one fails with `SwitchboardConfigError`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  children: ReadonlyArray<ServiceChild>,
  options: Options = {}
): Effect.Effect<LLM["Service"], SwitchboardConfigError.SwitchboardConfigError> =>
  Effect.map(Effect.fromResult(decodeAll(children, options)), () => chain(children, options))

/**
 * {@link make}, synchronously: a bad child or option throws
 * `SwitchboardConfigError` (prefer {@link make} / {@link layer}).
 *
 * @since 0.1.0
 * @category constructors
 */
export const service = (children: ReadonlyArray<ServiceChild>, options: Options = {}): LLM["Service"] => {
  orThrow(decodeAll(children, options))
  return chain(children, options)
}

/**
 * Puts `fallbacks` behind a service: `wrap(fallbacks, options)(primary)` is
 * the chain `[primary, ...fallbacks]`. A bad child or option throws
 * `SwitchboardConfigError` (prefer {@link layer}).
 *
 * @since 0.1.0
 * @category combinators
 */
export const wrap = (
  fallbacks: ReadonlyArray<ServiceChild>,
  options: Options = {}
): (primary: LLM["Service"]) => LLM["Service"] => {
  orThrow(decodeAll([{}, ...fallbacks], options))
  return (primary) => chain([{ service: primary }, ...fallbacks], options)
}

const chain = (children: ReadonlyArray<ServiceChild>, options: Options): LLM["Service"] => {
  const midStream = options.midStream ?? "fail"
  const on = options.on ?? isFallbackable
  const learned: Array<Learned> = children.map(() => ({ current: undefined }))
  // Each child's success teaches who it is: one function per child, none per call.
  const learnFrom = learned.map((memory) => (response: LlmResponse): LlmResponse => {
    learn(memory, response)
    return response
  })
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
  // Once the call's deadline has passed, a next child could only time out (and its breaker would
  // count a timeout it never had the time to avoid): the chain stops with the last error.
  const deadlinePassed = (fiber: Fiber.Fiber<unknown, unknown>): boolean => {
    const deadline = fiber.getRef(Deadline.CurrentDeadline)
    return deadline !== undefined && fiber.getRef(Clock.Clock).currentTimeMillisUnsafe() >= deadline
  }
  const exhausted = (request: LlmRequest, attempts: ReadonlyArray<Attempt>) =>
    failWith(new AllProvidersFailed({ provider: "fallback", ...(request.model ? { model: request.model } : {}), attempts }), attempts)

  const span = Effect.withSpan("Fallback.generate")
  const outcome = (error: LlmError) => Effect.annotateCurrentSpan({ "llm.outcome": error._tag })

  const generate = (request: LlmRequest): Effect.Effect<LlmResponse, LlmError> =>
    Effect.withFiber((fiber) => {
      const pricing = fiber.getRef(Pricing)
      const clock = fiber.getRef(Clock.Clock)
      // The chain's span only when a tracer is installed: without one it would go nowhere.
      const traced = isTraced(fiber) && !Telemetry.inTracedCall(fiber)
      const failed: Array<Attempt> = []
      let need: number | undefined
      const tryChild = (i: number): Effect.Effect<LlmResponse, LlmError> => {
        const start = clock.currentTimeMillisUnsafe()
        const answered = Effect.map(children[i]!.service.generate(request), learnFrom[i]!)
        // The first child answering, untraced (the common case): its response passes through as it is.
        const passed = failed.length === 0 && !traced ? answered : Effect.flatMap(answered, (response) => {
          const result = Effect.succeed(prepend(response, failed))
          return traced
            ? Effect.andThen(
              Effect.annotateCurrentSpan({ "llm.provider": response.provider, "llm.model": response.model }),
              result
            )
            : result
        })
        return catchChild(passed, (error, reported) => {
          learn(learned[i]!, error)
          failed.push(...attemptsOfFailure(reported, error, request, clock.currentTimeMillisUnsafe() - start))
          if (stops(error) || !on(error) || deadlinePassed(fiber)) return failWith(error, failed)
          need = needOf(error, need)
          const next = nextChild(i, need, pricing)
          if (next === undefined) return exhausted(request, failed)
          return Effect.andThen(switched(request, i, error, next), Effect.suspend(() => tryChild(next)))
        })
      }
      return traced ? span(Effect.tapError(tryChild(0), outcome)) : tryChild(0)
    })

  // Each child's try is one layer (`tryStreamWith`): it runs the child, shows its parts (skipping
  // what a restart repeats), and on failure picks what comes next, given the attempts behind it.
  const stream = (request: LlmRequest): Stream.Stream<StreamPart, LlmError> =>
    tryStreamWith((fiber) => {
      const pricing = fiber.getRef(Pricing)
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
        failWith(
          new StreamInterrupted({
            provider: error.provider,
            ...(error.model !== undefined ? { model: error.model } : {}),
            emittedText,
            reason: error._tag
          }),
          failed
        )
      // Called when the stream starts and from a failure's handler, so the child's stream is built
      // when it is about to run: no suspension of its own.
      const run = (i: number, mode: Mode): StreamTry<LlmError> => {
        const child = children[i]!
        const childRequest: LlmRequest = mode.prefix === undefined
          ? request
          : { ...request, messages: [...request.messages, { role: "assistant", content: mode.prefix }] }
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
        return {
          stream: child.service.stream(childRequest),
          request: childRequest,
          map: shown,
          recover: ({ attempts, error }: ChildFailure) =>
            Stream.unwrap(Effect.gen(function*() {
              learn(learned[i]!, error)
              failed.push(...attempts)
              if (!emitted) {
                if (stops(error) || !on(error) || (yield* Effect.withFiber((fiber) => Effect.succeed(deadlinePassed(fiber))))) {
                  return yield* failWith(error, failed)
                }
                need = needOf(error, need)
                const next = nextChild(i, need, pricing)
                if (next === undefined) return yield* exhausted(request, failed)
                yield* switched(request, i, error, next)
                return tryStreamWith(() => run(next, plain))
              }
              if (midStream === "fail" || toolOpen || stops(error) || !on(error)) return yield* interrupted(error)
              const next = midStream === "restart"
                ? nextChild(i, undefined, pricing)
                : nextChild(i, undefined, pricing, (j) => prefillOf(j, pricing))
              if (next === undefined) return yield* interrupted(error)
              yield* switched(request, i, error, next)
              const mode: Mode = midStream === "restart"
                ? { skipText: emittedText.length, skipReasoning: emittedReasoning.length, prefix: undefined }
                : { skipText: 0, skipReasoning: 0, prefix: emittedText }
              return tryStreamWith(() => run(next, mode))
            }))
        }
      }
      return run(0, plain)
    })

  return LLM.of({ generate, stream })
}

const isChild = <E, R>(input: ChildInput<E, R>): input is Child<E, R> => !Layer.isLayer(input)

const layerOf = <E, R>(
  children: ReadonlyArray<ChildInput<E, R>>,
  options: Options
): Layer.Layer<LLM, E | SwitchboardConfigError.SwitchboardConfigError, R> => {
  const inputs = children.map((child): Child<E, R> => isChild(child) ? child : { layer: child })
  return Layer.effect(
    LLM,
    Effect.gen(function*() {
      yield* Effect.fromResult(decodeAll(inputs, options))
      for (const [index, input] of inputs.entries()) {
        if (!Layer.isLayer(input.layer)) {
          return yield* new SwitchboardConfigError.SwitchboardConfigError({
            path: `Fallback.children[${index}]`,
            message: "expected an LLM layer or { layer, contextWindow?, prefill?, name? }"
          })
        }
      }
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
      return chain(built, options)
    })
  )
}

/**
 * A fallback chain over `children`, tried in order (see the module docs).
 * The chain's error and requirement types are the union of its children's
 * (inferred from the array: `[Layer<LLM, E1, R1>, { layer: Layer<LLM, E2, R2> }]`
 * gives `Layer<LLM, E1 | E2 | SwitchboardConfigError, R1 | R2>`);
 * a bad child or option fails the layer at build with `SwitchboardConfigError`.
 *
 * @example
 * ```ts
 * import { CircuitBreaker, Fallback, Llm, Retry } from "@switchboard/core"
 *
 * const Stack = Fallback.layer([
 *   Llm.layerTest([{ text: "a" }]).pipe(Retry.layer({ times: 2 }), CircuitBreaker.layer({ failureThreshold: 5 })),
 *   { layer: Llm.layerTest([{ text: "b" }]), contextWindow: 200_000, prefill: true }
 * ], { midStream: "continue" })
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = <const Children extends ReadonlyArray<ChildInput<unknown, unknown>>>(
  children: Children,
  options: Options = {}
): Layer.Layer<LLM, ErrorOf<Children[number]> | SwitchboardConfigError.SwitchboardConfigError, ContextOf<Children[number]>> =>
  layerOf<ErrorOf<Children[number]>, ContextOf<Children[number]>>(
    children as ReadonlyArray<ChildInput<ErrorOf<Children[number]>, ContextOf<Children[number]>>>,
    options
  )
