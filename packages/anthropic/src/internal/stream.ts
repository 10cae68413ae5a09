/**
 * Anthropic's raw stream events (`message_start`, `content_block_*`,
 * `message_delta`, `message_stop`) as a table to the shared
 * `StreamAccumulator`'s deltas. Every event is decoded by a Schema compiled
 * once (usage counts non-negative integers, text a string, a tool call
 * named).
 *
 * - text deltas → text; thinking deltas → reasoning (kept out of the text);
 *   tool input JSON → a tool fragment by block index (checked to be JSON when
 *   its block stops).
 * - with a json-schema response format, the forced tool's input JSON is the
 *   answer text.
 * - usage: input counts from `message_start`, output (and any later input
 *   counts) from `message_delta`, merged.
 * - the finish reason is given at `message_stop`: a stream cut before it has
 *   not finished.
 *
 * @internal
 */
import { LlmError, type LlmResponse } from "@switchboard/core"
import { Decode, StreamAccumulator } from "@switchboard/core/provider"
import { Schema } from "effect"
import {
  finishReasonOf,
  isPlainUsage,
  isRecord,
  isTextOrAbsent,
  type JsonTool,
  type Origin,
  parseToolInput,
  type RawUsage,
  usageOf,
  WireBlock,
  WireUsage
} from "./mapping.ts"

type StreamPart = LlmResponse.StreamPart

const WireEvent = Schema.Struct({
  type: Schema.String,
  index: Schema.optional(Schema.Number),
  message: Schema.optional(Schema.Struct({
    id: Schema.optional(Schema.NullOr(Schema.String)),
    model: Schema.optional(Schema.NullOr(Schema.String)),
    usage: Schema.optional(Schema.NullOr(WireUsage))
  })),
  content_block: Schema.optional(WireBlock),
  delta: Schema.optional(Schema.Struct({
    type: Schema.optional(Schema.String),
    text: Decode.OptionalText,
    thinking: Decode.OptionalText,
    partial_json: Decode.OptionalText,
    stop_reason: Schema.optional(Schema.NullOr(Schema.String))
  })),
  usage: Schema.optional(Schema.NullOr(WireUsage))
})

const decodeEventWithSchema = Decode.bodyDecoder(WireEvent, "a stream event")

// The fast path of every common event: a hand-written check strictly narrower than `WireEvent` (an index
// is a safe integer, a content block a record of strings), so an event it accepts is one the Schema accepts
// too, read the same way (the table reads only the Schema's fields). Anything else, and every error message,
// goes to the Schema. `test/fastpath.test.ts` holds it to the Schema.
const isPlainEvent = (raw: unknown): raw is typeof WireEvent.Type => {
  if (!isRecord(raw) || typeof raw["type"] !== "string" || !isPlainUsage(raw["usage"])) return false
  const index = raw["index"]
  if (index !== undefined && !Number.isSafeInteger(index)) return false
  const message = raw["message"]
  if (
    message !== undefined &&
    !(isRecord(message) && isTextOrAbsent(message["id"]) && isTextOrAbsent(message["model"]) && isPlainUsage(message["usage"]))
  ) return false
  const block = raw["content_block"]
  if (
    block !== undefined &&
    !(isRecord(block) && typeof block["type"] === "string" && isTextOrAbsent(block["text"]) &&
      isTextOrAbsent(block["thinking"]) && isTextOrAbsent(block["id"]) && isTextOrAbsent(block["name"]))
  ) return false
  const delta = raw["delta"]
  return delta === undefined ||
    (isRecord(delta) && (delta["type"] === undefined || typeof delta["type"] === "string") &&
      isTextOrAbsent(delta["text"]) && isTextOrAbsent(delta["thinking"]) && isTextOrAbsent(delta["partial_json"]) &&
      isTextOrAbsent(delta["stop_reason"]))
}

/** A stream event as the table reads it: the fast path when it applies, else the Schema. @internal */
export const decodeEvent = (raw: unknown, origin: Origin): typeof WireEvent.Type | LlmError.MalformedResponse =>
  isPlainEvent(raw) ? raw : decodeEventWithSchema(raw, origin)

/** {@link decodeEvent} through the Schema alone (`test/fastpath.test.ts` holds the fast path to it). @internal */
export const decodeEventSchemaOnly = (raw: unknown, origin: Origin): typeof WireEvent.Type | LlmError.MalformedResponse =>
  decodeEventWithSchema(raw, origin)

/** A decoded stream event. @internal */
export type WireEvent = typeof WireEvent.Type

interface Block {
  readonly kind: "text" | "thinking" | "tool" | "json" | "other"
  readonly id: string
  readonly name: string
  json: string
}

const mergeUsage = (start: RawUsage | undefined, delta: RawUsage | undefined): RawUsage => {
  const pick = <K extends keyof RawUsage>(key: K): RawUsage[K] => {
    const d = delta?.[key]
    return d !== undefined && d !== null ? d : start?.[key]
  }
  return {
    input_tokens: pick("input_tokens"),
    output_tokens: pick("output_tokens"),
    cache_read_input_tokens: pick("cache_read_input_tokens"),
    cache_creation_input_tokens: pick("cache_creation_input_tokens"),
    output_tokens_details: pick("output_tokens_details")
  }
}

/**
 * The table of one stream: Anthropic event → deltas, or the error the event
 * proves. It keeps what Anthropic spreads over events (block kinds, usage
 * halves, the stop reason until `message_stop`).
 */
export const table = (options: { readonly jsonTool: JsonTool | undefined }): StreamAccumulator.Table<unknown> => {
  const { jsonTool } = options
  const blocks = new Map<number, Block>()
  let startUsage: RawUsage | undefined
  let deltaUsage: RawUsage | undefined
  let stopReason: string | null | undefined
  let answeredByTool = false
  let otherTools = false
  return (raw, acc) => {
    const origin = { provider: acc.provider, model: acc.model }
    const event = decodeEvent(raw, origin)
    if (event instanceof LlmError.MalformedResponse) return event
    const index = event.index ?? 0
    switch (event.type) {
      case "message_start": {
        const message = event.message
        startUsage = message?.usage ?? undefined
        return [
          { _tag: "meta", id: message?.id ?? undefined, model: message?.model ?? undefined },
          { _tag: "usage", usage: usageOf(mergeUsage(startUsage, deltaUsage)) }
        ]
      }
      case "content_block_start": {
        const cb = event.content_block
        if (cb === undefined) return new LlmError.MalformedResponse({ ...origin, detail: "content_block_start without a content_block" })
        if (cb.type === "text") {
          blocks.set(index, { kind: "text", id: "", name: "", json: "" })
          return jsonTool !== undefined ? [] : [{ _tag: "text", text: cb.text ?? "" }]
        }
        if (cb.type === "thinking") {
          blocks.set(index, { kind: "thinking", id: "", name: "", json: "" })
          return [{ _tag: "reasoning", text: cb.thinking ?? "" }]
        }
        if (cb.type === "tool_use") {
          const id = cb.id ?? `toolu_${index}`
          if (typeof cb.name !== "string" || cb.name.length === 0) {
            return new LlmError.MalformedResponse({ ...origin, detail: `tool_use block ${id} has no name` })
          }
          const isJson = jsonTool !== undefined && cb.name === jsonTool.name
          blocks.set(index, { kind: isJson ? "json" : "tool", id, name: cb.name, json: "" })
          if (isJson) {
            answeredByTool = true
            return []
          }
          otherTools = true
          return [{ _tag: "tool", index, id, name: cb.name, input: "" }]
        }
        blocks.set(index, { kind: "other", id: "", name: "", json: "" })
        return []
      }
      case "content_block_delta": {
        const b = blocks.get(index)
        if (b === undefined) {
          return new LlmError.MalformedResponse({ ...origin, detail: `a delta for content block ${index}, which never started` })
        }
        const delta = event.delta
        if (delta === undefined) return []
        if (delta.type === "text_delta" && b.kind === "text") return jsonTool !== undefined ? [] : [{ _tag: "text", text: delta.text ?? "" }]
        if (delta.type === "thinking_delta" && b.kind === "thinking") return [{ _tag: "reasoning", text: delta.thinking ?? "" }]
        if (delta.type === "input_json_delta") {
          const json = delta.partial_json ?? ""
          if (b.kind === "tool") {
            b.json += json
            return [{ _tag: "tool", index, input: json }]
          }
          if (b.kind === "json") {
            b.json += json
            return [{ _tag: "text", text: json }]
          }
        }
        return []
      }
      case "content_block_stop": {
        const b = blocks.get(index)
        if (b !== undefined && (b.kind === "tool" || b.kind === "json")) {
          const input = parseToolInput(b.json, origin, b.name)
          if (input instanceof LlmError.MalformedResponse) return input
        }
        return []
      }
      case "message_delta": {
        stopReason = event.delta?.stop_reason ?? stopReason
        if (event.usage) {
          deltaUsage = event.usage
          return [{ _tag: "usage", usage: usageOf(mergeUsage(startUsage, deltaUsage)) }]
        }
        return []
      }
      case "message_stop": {
        const reason = answeredByTool && !otherTools && stopReason === "tool_use" ? "stop" : finishReasonOf(stopReason)
        return [{ _tag: "finish", reason, raw: stopReason ?? null }]
      }
      default:
        return []
    }
  }
}

/** The fold state of one streamed answer, event by event. */
export interface Accumulator {
  /** The parts an event yields (the `finish` part at `message_stop`), or the error it proves. */
  readonly step: (event: unknown, now: number) => ReadonlyArray<StreamPart> | LlmError.LlmError
  /** True once `message_stop` was seen. */
  readonly finished: () => boolean
}

/** Starts a fold for one stream (the table over the shared accumulator, one event at a time). */
export const makeAccumulator = (options: {
  readonly origin: Origin
  readonly jsonTool: JsonTool | undefined
  readonly startedAt: number
  readonly rateLimit: LlmResponse.RateLimitInfo | undefined
}): Accumulator => {
  const acc = StreamAccumulator.make({ ...options.origin, startedAt: options.startedAt, rateLimit: options.rateLimit })
  const step = table({ jsonTool: options.jsonTool })
  let done = false
  return {
    step: (event, now) => {
      const deltas = step(event, acc)
      if (!Array.isArray(deltas)) return deltas as LlmError.LlmError
      const out: Array<StreamPart> = []
      for (const delta of deltas) StreamAccumulator.push(acc, delta, out)
      if (acc.finishReason !== undefined && !done) {
        const response = StreamAccumulator.finish(acc, now, rawOf(acc))
        if ("_tag" in response) return response
        done = true
        out.push({ type: "finish", response })
      }
      return out
    },
    finished: () => done
  }
}

/** The `raw` of a streamed answer: what Anthropic said, summarised. */
export const rawOf = (acc: StreamAccumulator.Accumulator): unknown => ({
  id: acc.id,
  model: acc.model,
  stop_reason: acc.finishRaw ?? null,
  usage: acc.usage
})
