/**
 * Accumulates Chat Completions stream chunks: emits `StreamPart`s as deltas
 * arrive and keeps the text, tool-call JSON, finish reason and usage needed
 * for the final `finish` part.
 *
 * @internal
 */
import type { LlmResponse } from "@switchboard/core"
import { type Array as Arr, Cause, Effect, Stream } from "effect"
import type { Collected, RawToolCall } from "./mapping.ts"

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

interface OpenCall {
  id: string
  name: string
  arguments: string
}

/** The mutable state of one stream. */
export interface Accumulator {
  id: string
  text: string
  refusal: string
  readonly calls: Map<number, OpenCall>
  finishReason: unknown
  usage: unknown
  sawFinish: boolean
  sawUsage: boolean
}

/** A fresh accumulator for one stream. */
export const make = (): Accumulator => ({
  id: "",
  text: "",
  refusal: "",
  calls: new Map(),
  finishReason: undefined,
  usage: undefined,
  sawFinish: false,
  sawUsage: false
})

/**
 * Folds one chunk into the accumulator and returns the parts it yields:
 * `text-delta` for `delta.content` (and `delta.refusal`), `reasoning-delta`
 * for `delta.reasoning_content` (DeepSeek, vLLM) or `delta.reasoning`
 * (OpenRouter, Ollama), `tool-call-delta` per tool-call fragment.
 */
export const onChunk = (acc: Accumulator, chunk: unknown): ReadonlyArray<LlmResponse.StreamPart> => {
  if (!isRecord(chunk)) return []
  const parts: Array<LlmResponse.StreamPart> = []
  if (acc.id === "" && typeof chunk["id"] === "string") acc.id = chunk["id"]
  const usage = chunk["usage"] ?? (isRecord(chunk["x_groq"]) ? chunk["x_groq"]["usage"] : undefined)
  if (isRecord(usage)) {
    acc.usage = usage
    acc.sawUsage = true
  }
  const choices = chunk["choices"]
  if (!Array.isArray(choices)) return parts
  for (const choice of choices) {
    if (!isRecord(choice) || (choice["index"] !== undefined && choice["index"] !== 0)) continue
    const delta = isRecord(choice["delta"]) ? choice["delta"] : {}
    const reasoning = delta["reasoning_content"] ?? delta["reasoning"]
    if (typeof reasoning === "string" && reasoning.length > 0) parts.push({ type: "reasoning-delta", text: reasoning })
    const content = delta["content"]
    if (typeof content === "string" && content.length > 0) {
      acc.text += content
      parts.push({ type: "text-delta", text: content })
    }
    const refusal = delta["refusal"]
    if (typeof refusal === "string" && refusal.length > 0) {
      acc.refusal += refusal
      parts.push({ type: "text-delta", text: refusal })
    }
    const calls = delta["tool_calls"]
    if (Array.isArray(calls)) {
      for (const call of calls) {
        if (!isRecord(call)) continue
        const index = typeof call["index"] === "number" ? call["index"] : acc.calls.size
        const fn = isRecord(call["function"]) ? call["function"] : {}
        let open = acc.calls.get(index)
        const name = typeof fn["name"] === "string" && fn["name"].length > 0 ? fn["name"] : undefined
        if (open === undefined) {
          open = { id: typeof call["id"] === "string" ? call["id"] : `call_${index}`, name: name ?? "", arguments: "" }
          acc.calls.set(index, open)
        } else if (name !== undefined && open.name === "") {
          open.name = name
        }
        const args = typeof fn["arguments"] === "string" ? fn["arguments"] : ""
        open.arguments += args
        parts.push(
          name !== undefined
            ? { type: "tool-call-delta", id: open.id, name, inputDelta: args }
            : { type: "tool-call-delta", id: open.id, inputDelta: args }
        )
      }
    }
    const finish = choice["finish_reason"]
    if (finish !== undefined && finish !== null) {
      acc.finishReason = finish
      acc.sawFinish = true
    }
  }
  return parts
}

/** The accumulated message, ready for `toResponse`. */
export const collected = (acc: Accumulator): Collected => ({
  id: acc.id,
  text: acc.text,
  refusal: acc.refusal.length > 0 ? acc.refusal : undefined,
  toolCalls: [...acc.calls.entries()].sort(([a], [b]) => a - b).map(([, call]): RawToolCall => ({ ...call })),
  finishReason: acc.finishReason,
  usage: acc.usage
})

/** What {@link reader} returns. */
export interface Reader<B, E> {
  readonly stream: Stream.Stream<B, E>
  /** True once the iterable ended or failed: there is no request left to abort. */
  readonly ended: () => boolean
  /** Stops the pump: nothing more is read. */
  readonly stop: () => void
}

/**
 * A stream over an async iterable that reads ahead of its consumer: a pump
 * in promise land folds each item through `f` into a buffer, and every pull
 * hands over everything buffered so far as one array. A consumer that keeps
 * up therefore pays one fiber suspension per network read instead of one per
 * chunk (each suspension captures an async context and runs every stage of
 * the stream once). The pump stops reading once `highWater` parts wait, and
 * resumes when they are taken. The first part wakes a waiting consumer at
 * once; after that a waiting consumer is woken on the next macrotask, so
 * chunks that arrived in the same read land in the same batch.
 *
 * The returned `stop` ends the pump (it reads nothing more); aborting the
 * request is the caller's job, and `ended` tells whether there is still a
 * request to abort.
 */
export const reader = <A, B, E>(
  iterable: AsyncIterable<A>,
  f: (item: A) => ReadonlyArray<B>,
  onError: (error: unknown) => E,
  highWater = 256
): Reader<B, E> => {
  let buffer: Array<B> = []
  let state: "idle" | "reading" | "ended" | "failed" = "idle"
  let failure: unknown
  let stopped = false
  let wake: (() => void) | undefined
  let resumePump: (() => void) | undefined
  let delivered = false
  const notify = () => {
    const resume = wake
    if (resume === undefined) return
    wake = undefined
    // The first part goes out at once (time to first part is what a streaming caller waits
    // for); later wakes wait a macrotask so the chunks of one network read form one batch.
    if (delivered) setImmediate(resume)
    else {
      delivered = true
      resume()
    }
  }
  const pump = async () => {
    try {
      const iterator = iterable[Symbol.asyncIterator]()
      while (!stopped) {
        const next = await iterator.next()
        if (next.done === true) break
        const out = f(next.value)
        for (let i = 0; i < out.length; i++) buffer.push(out[i]!)
        if (buffer.length === 0) continue
        notify()
        if (buffer.length >= highWater && !stopped) await new Promise<void>((resolve) => resumePump = resolve)
      }
      state = "ended"
    } catch (error) {
      failure = error
      state = "failed"
    }
    notify()
  }
  const waitForMore = Effect.callback<void>((resume) => {
    wake = () => resume(Effect.void)
    return Effect.sync(() => {
      wake = undefined
    })
  })
  const pull: Effect.Effect<Arr.NonEmptyReadonlyArray<B>, E | Cause.Done> = Effect.suspend(() => {
    if (buffer.length > 0) {
      const out = buffer as unknown as Arr.NonEmptyReadonlyArray<B>
      buffer = []
      const resume = resumePump
      resumePump = undefined
      resume?.()
      return Effect.succeed(out)
    }
    switch (state) {
      case "idle":
        state = "reading"
        void pump()
        return Effect.flatMap(waitForMore, () => pull)
      case "reading":
        return Effect.flatMap(waitForMore, () => pull)
      case "ended":
        return Cause.done()
      case "failed":
        return Effect.fail(onError(failure))
    }
  })
  return {
    stream: Stream.fromPull(Effect.succeed(pull)),
    ended: () => state === "ended" || state === "failed",
    stop: () => {
      stopped = true
      const resume = resumePump
      resumePump = undefined
      resume?.()
    }
  }
}
