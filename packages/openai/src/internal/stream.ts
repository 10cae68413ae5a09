/**
 * Accumulates Chat Completions stream chunks: emits `StreamPart`s as deltas
 * arrive and keeps the text, tool-call JSON, finish reason and usage needed
 * for the final `finish` part.
 *
 * @internal
 */
import type { LlmResponse } from "@switchboard/core"
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
