/**
 * The scripted `LLM` for tests: replies, errors, delays on the `Clock`,
 * chunked streams, cuts and tool calls, with a record of every request it
 * saw. Swap it in for a provider layer; `TestClock` drives its delays.
 *
 * @since 0.1.0
 */
import { Clock, Context, Duration, Effect, Layer, Stream } from "effect"
import * as Streams from "./internal/streams.ts"
import { LLM, make } from "./LLM.ts"
import { type LlmError, NetworkError } from "./LlmError.ts"
import type { LlmRequest, ToolCallPart } from "./LlmRequest.ts"
import { type FinishReason, type LlmResponse, makeUsage, type StreamPart, type Usage } from "./LlmResponse.ts"

/**
 * One scripted answer of {@link layerTest}.
 *
 * - `{ text }`: a reply. Streamed as `chunks` (default: the whole text in one
 *   delta), each after `chunkDelay`, then a `finish` part.
 * - `{ error }`: a failure; when streamed, `chunks` are emitted first.
 * - `{ cut }`: streamed, these chunks then an end without `finish` (which the
 *   leaf turns into a `NetworkError`); as a whole call, a `NetworkError`.
 *
 * `delay` waits on the `Clock` before answering (so `TestClock` drives it);
 * `model` / `provider` override what the response reports.
 *
 * @since 0.1.0
 * @category models
 */
export type TestStep =
  | {
    readonly text: string
    readonly chunks?: ReadonlyArray<string> | undefined
    readonly toolCalls?: ReadonlyArray<Omit<ToolCallPart, "type">> | undefined
    readonly finishReason?: FinishReason | undefined
    readonly usage?: Partial<Usage> | undefined
    readonly delay?: Duration.Input | undefined
    readonly chunkDelay?: Duration.Input | undefined
  }
  | {
    readonly error: LlmError
    readonly chunks?: ReadonlyArray<string> | undefined
    readonly delay?: Duration.Input | undefined
    readonly chunkDelay?: Duration.Input | undefined
  }
  | {
    readonly cut: ReadonlyArray<string>
    readonly delay?: Duration.Input | undefined
    readonly chunkDelay?: Duration.Input | undefined
  }

/**
 * The script of a test layer: steps answered in order (the last repeats once
 * they run out), or a function of the request and its index.
 *
 * @since 0.1.0
 * @category models
 */
export type TestScript =
  | ReadonlyArray<TestStep>
  | {
    readonly provider?: string | undefined
    readonly model?: string | undefined
    readonly steps?: ReadonlyArray<TestStep> | undefined
    readonly respond?: ((request: LlmRequest, index: number) => TestStep) | undefined
    /** Keep every request for `requests` (default true); turn off for long-running benchmarks. */
    readonly record?: boolean | undefined
  }

/**
 * What a test layer saw: every request in order (unless the script says
 * `record: false`), how many calls were interrupted before they answered,
 * and how many completed.
 *
 * @since 0.1.0
 * @category services
 */
export class LlmTest extends Context.Service<LlmTest, {
  readonly requests: Effect.Effect<ReadonlyArray<LlmRequest>>
  readonly interrupted: Effect.Effect<number>
  readonly completed: Effect.Effect<number>
}>()("@switchboard/core/LlmTest") {}

/**
 * A scripted `LLM` with its record, for tests that need several of them (for
 * example as the children of a fallback).
 *
 * @since 0.1.0
 * @category models
 */
export interface TestLlm {
  readonly requests: Effect.Effect<ReadonlyArray<LlmRequest>>
  readonly interrupted: Effect.Effect<number>
  readonly completed: Effect.Effect<number>
  readonly service: LLM["Service"]
  readonly layer: Layer.Layer<LLM>
}

const countTokens = (text: string): number => text.length === 0 ? 0 : Math.ceil(text.length / 4)

const requestText = (request: LlmRequest): string => {
  let text = request.system ?? ""
  for (const message of request.messages) {
    if (typeof message.content === "string") text += message.content
    else for (const part of message.content) if (part.type === "text") text += part.text
  }
  return text
}

/**
 * Builds a scripted `LLM` and its record (see {@link TestStep}).
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeTest = (script: TestScript): Effect.Effect<TestLlm> =>
  Effect.sync(() => {
    const options = Array.isArray(script) ? { steps: script as ReadonlyArray<TestStep> } : script as Exclude<
      TestScript,
      ReadonlyArray<TestStep>
    >
    const provider = options.provider ?? "test"
    const defaultModel = options.model ?? "test-model"
    const seen: Array<LlmRequest> = []
    const record = options.record ?? true
    let calls = 0
    let interrupted = 0
    let completed = 0
    const next = (request: LlmRequest): TestStep => {
      const index = calls++
      if (record) seen.push(request)
      if (options.respond !== undefined) return options.respond(request, index)
      const steps = options.steps ?? []
      const step = steps[Math.min(index, steps.length - 1)]
      return step ?? { text: "ok" }
    }
    const sleep = (delay: Duration.Input | undefined) => delay === undefined ? Effect.void : Effect.sleep(delay)
    const track = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
      Effect.onExit(effect, (exit) => {
        if (exit._tag === "Success") completed++
        else if (exit.cause.reasons.some((reason) => reason._tag === "Interrupt")) interrupted++
        return Effect.void
      })
    const respond = (
      request: LlmRequest,
      model: string,
      step: Extract<TestStep, { text: string }>,
      latencyMs: number
    ): LlmResponse => {
      const toolCalls = (step.toolCalls ?? []).map((call): ToolCallPart => ({ type: "tool-call", ...call }))
      const inputTokens = countTokens(requestText(request))
      const outputTokens = countTokens(step.text) + toolCalls.length
      return {
        id: `test-${calls}`,
        provider,
        model,
        text: step.text,
        content: [...(step.text.length > 0 ? [{ type: "text" as const, text: step.text }] : []), ...toolCalls],
        toolCalls,
        finishReason: step.finishReason ?? (toolCalls.length > 0 ? "tool-calls" : "stop"),
        usage: makeUsage({ inputTokens, outputTokens, ...step.usage }),
        costUsd: 0,
        latencyMs,
        cached: false,
        attempts: []
      }
    }
    const service = make({
      provider,
      model: defaultModel,
      generate: (request, model) =>
        track(Effect.withFiber((fiber) => {
          const clock = fiber.getRef(Clock.Clock)
          const start = clock.currentTimeMillisUnsafe()
          const step = next(request)
          const answer = (): Effect.Effect<LlmResponse, LlmError> => {
            if ("error" in step) return Effect.fail(step.error)
            if ("cut" in step) return Effect.fail(new NetworkError({ provider, model, detail: "scripted cut" }))
            return Effect.succeed(respond(request, model, step, clock.currentTimeMillisUnsafe() - start))
          }
          return step.delay === undefined ? answer() : Effect.flatMap(Effect.sleep(step.delay), answer)
        })),
      stream: (request, model) =>
        Stream.unwrap(Effect.gen(function*() {
          const start = yield* Clock.currentTimeMillis
          const step = next(request)
          yield* sleep(step.delay)
          const chunks = "cut" in step ? step.cut : "error" in step ? step.chunks ?? [] : step.chunks ?? [step.text]
          const deltas = Stream.fromIterable(chunks).pipe(
            Stream.mapEffect((text) => Effect.as(sleep(step.chunkDelay), { type: "text-delta", text } as StreamPart))
          )
          if ("cut" in step) return deltas
          if ("error" in step) return Stream.concat(deltas, Stream.fail(step.error))
          const tools = Stream.fromIterable(
            (step.toolCalls ?? []).map((call): StreamPart => ({
              type: "tool-call-delta",
              id: call.id,
              name: call.name,
              inputDelta: JSON.stringify(call.input)
            }))
          )
          const finish = Stream.fromEffect(
            Effect.map(Clock.currentTimeMillis, (now): StreamPart => ({
              type: "finish",
              response: respond(request, model, step, now - start)
            }))
          )
          return deltas.pipe(Stream.concat(tools), Stream.concat(finish))
        })).pipe(
          Streams.onExit((exit) =>
            Effect.sync(() => {
              if (exit._tag === "Success") completed++
              else if (exit.cause.reasons.some((reason) => reason._tag === "Interrupt")) interrupted++
            })
          )
        )
    })
    return {
      service,
      layer: Layer.succeed(LLM, service),
      requests: Effect.sync(() => seen.slice()),
      interrupted: Effect.sync(() => interrupted),
      completed: Effect.sync(() => completed)
    }
  })

/**
 * A scripted `LLM` for tests, with an `LlmTest` record of what it saw. Users
 * swap it in for a provider layer; delays run on the `Clock`, so `TestClock`
 * drives them.
 *
 * @example
 * ```ts
 * const TestLlm = Llm.layerTest([
 *   { error: new LlmError.RateLimited({ provider: "test", scope: "requests", source: "provider" }) },
 *   { text: "hello", delay: "200 millis" }
 * ])
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerTest = (script: TestScript): Layer.Layer<LLM | LlmTest> =>
  Layer.unwrap(Effect.map(makeTest(script), (test) =>
    Layer.mergeAll(
      Layer.succeed(LLM, test.service),
      Layer.succeed(LlmTest, LlmTest.of({
        requests: test.requests,
        interrupted: test.interrupted,
        completed: test.completed
      }))
    )))
