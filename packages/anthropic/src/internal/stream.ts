/**
 * Folds Anthropic's raw stream events (`message_start`, `content_block_*`,
 * `message_delta`, `message_stop`) into Switchboard `StreamPart`s while
 * accumulating the whole answer for the final `finish` part.
 *
 * - text deltas → `text-delta`; thinking deltas → `reasoning-delta` (kept out
 *   of the text); tool input JSON → `tool-call-delta` (the first with the
 *   tool's name), parsed when its block stops (invalid JSON →
 *   `MalformedResponse`).
 * - with a json-schema response format, the forced tool's input JSON is the
 *   answer text, streamed as `text-delta`.
 * - usage: input counts from `message_start`, output (and any later input
 *   counts) from `message_delta`.
 *
 * @internal
 */
import type * as Api from "@anthropic-ai/sdk/resources/messages"
import { LlmError } from "@switchboard/core"
import type { LlmResponse } from "@switchboard/core"
import {
  answerOf,
  isMalformed,
  type JsonTool,
  type Origin,
  parseToolInput,
  type RawUsage,
  usageOf
} from "./mapping.ts"

type StreamPart = LlmResponse.StreamPart

interface Block {
  readonly kind: "text" | "thinking" | "tool" | "json" | "other"
  readonly id: string
  readonly name: string
  text: string
  json: string
  input?: unknown
}

/** The fold state of one streamed answer. */
export interface Accumulator {
  /** The parts an event yields, or the error it proves. */
  readonly step: (event: Api.RawMessageStreamEvent, now: number) => ReadonlyArray<StreamPart> | LlmError.LlmError
  /** True once `message_stop` was seen. */
  readonly finished: () => boolean
}

const mergeUsage = (start: RawUsage | undefined, delta: RawUsage | undefined): RawUsage => {
  const pick = (key: keyof RawUsage) => {
    const d = delta?.[key]
    return d !== undefined && d !== null ? d : start?.[key]
  }
  return {
    input_tokens: pick("input_tokens") as number | undefined,
    output_tokens: pick("output_tokens") as number | undefined,
    cache_read_input_tokens: pick("cache_read_input_tokens") as number | undefined,
    cache_creation_input_tokens: pick("cache_creation_input_tokens") as number | undefined,
    output_tokens_details: pick("output_tokens_details") as RawUsage["output_tokens_details"]
  }
}

/** Starts a fold for one stream. */
export const makeAccumulator = (options: {
  readonly origin: Origin
  readonly jsonTool: JsonTool | undefined
  readonly startedAt: number
  readonly rateLimit: LlmResponse.RateLimitInfo | undefined
}): Accumulator => {
  const { origin, jsonTool } = options
  const blocks = new Map<number, Block>()
  const order: Array<number> = []
  let id = ""
  let model = origin.model
  let startUsage: RawUsage | undefined
  let deltaUsage: RawUsage | undefined
  let stopReason: string | null | undefined
  let raw: Record<string, unknown> | undefined
  let done = false

  const finish = (now: number): ReadonlyArray<StreamPart> | LlmError.LlmError => {
    const content: Array<{ type: string; [key: string]: unknown }> = []
    for (const index of order) {
      const b = blocks.get(index)!
      if (b.kind === "text") content.push({ type: "text", text: b.text })
      else if (b.kind === "tool" || b.kind === "json") {
        content.push({ type: "tool_use", id: b.id, name: b.name, input: b.input ?? {} })
      }
    }
    const answer = answerOf(content, stopReason, jsonTool)
    const usage = mergeUsage(startUsage, deltaUsage)
    const response: LlmResponse.LlmResponse = {
      id,
      provider: origin.provider,
      model,
      ...answer,
      usage: usageOf(usage),
      costUsd: 0,
      latencyMs: Math.max(0, now - options.startedAt),
      cached: false,
      attempts: [],
      ...(options.rateLimit !== undefined ? { rateLimit: options.rateLimit } : {}),
      raw: { ...raw, content, stop_reason: stopReason ?? null, usage }
    }
    done = true
    return [{ type: "finish", response }]
  }

  const step = (event: Api.RawMessageStreamEvent, now: number): ReadonlyArray<StreamPart> | LlmError.LlmError => {
    switch (event.type) {
      case "message_start": {
        const message = event.message
        id = message.id ?? id
        if (typeof message.model === "string" && message.model.length > 0) model = message.model
        startUsage = message.usage ?? undefined
        const { content: _content, usage: _usage, ...rest } = message as unknown as Record<string, unknown>
        raw = rest
        return []
      }
      case "content_block_start": {
        const cb = event.content_block as unknown as { type: string; [key: string]: unknown }
        order.push(event.index)
        if (cb.type === "text") {
          const text = typeof cb.text === "string" ? cb.text : ""
          blocks.set(event.index, { kind: "text", id: "", name: "", text, json: "" })
          return text.length > 0 ? [{ type: "text-delta", text }] : []
        }
        if (cb.type === "thinking") {
          const text = typeof cb.thinking === "string" ? cb.thinking : ""
          blocks.set(event.index, { kind: "thinking", id: "", name: "", text, json: "" })
          return text.length > 0 ? [{ type: "reasoning-delta", text }] : []
        }
        if (cb.type === "tool_use" && typeof cb.id === "string" && typeof cb.name === "string") {
          const isJson = jsonTool !== undefined && cb.name === jsonTool.name
          blocks.set(event.index, { kind: isJson ? "json" : "tool", id: cb.id, name: cb.name, text: "", json: "" })
          return isJson ? [] : [{ type: "tool-call-delta", id: cb.id, name: cb.name, inputDelta: "" }]
        }
        blocks.set(event.index, { kind: "other", id: "", name: "", text: "", json: "" })
        return []
      }
      case "content_block_delta": {
        const b = blocks.get(event.index)
        const delta = event.delta as unknown as { type: string; [key: string]: unknown }
        if (b === undefined) {
          return new LlmError.MalformedResponse({
            provider: origin.provider,
            model,
            detail: `a delta for content block ${event.index}, which never started`
          })
        }
        if (delta.type === "text_delta" && typeof delta.text === "string" && b.kind === "text") {
          b.text += delta.text
          return delta.text.length > 0 ? [{ type: "text-delta", text: delta.text }] : []
        }
        if (delta.type === "thinking_delta" && typeof delta.thinking === "string" && b.kind === "thinking") {
          b.text += delta.thinking
          return delta.thinking.length > 0 ? [{ type: "reasoning-delta", text: delta.thinking }] : []
        }
        if (delta.type === "input_json_delta" && typeof delta.partial_json === "string") {
          if (b.kind === "tool") {
            b.json += delta.partial_json
            return delta.partial_json.length > 0
              ? [{ type: "tool-call-delta", id: b.id, inputDelta: delta.partial_json }]
              : []
          }
          if (b.kind === "json") {
            b.json += delta.partial_json
            return delta.partial_json.length > 0 ? [{ type: "text-delta", text: delta.partial_json }] : []
          }
        }
        return []
      }
      case "content_block_stop": {
        const b = blocks.get(event.index)
        if (b !== undefined && (b.kind === "tool" || b.kind === "json")) {
          const input = parseToolInput(b.json, { provider: origin.provider, model }, b.name)
          if (isMalformed(input)) return input
          b.input = input
        }
        return []
      }
      case "message_delta": {
        stopReason = event.delta.stop_reason ?? stopReason
        deltaUsage = event.usage ?? deltaUsage
        return []
      }
      case "message_stop":
        return finish(now)
      default:
        return []
    }
  }

  return { step, finished: () => done }
}
