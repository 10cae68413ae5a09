/**
 * ConverseStream events as a table to the shared `StreamAccumulator`. Text
 * deltas are text, reasoning deltas reasoning, tool-use starts and input
 * deltas tool fragments by block index (the JSON-schema format tool's input
 * is the answer text). Every event is decoded by a Schema compiled once
 * (usage counts non-negative integers — a `BigInt` is refused — text a
 * string, a tool named). An exception event fails the stream with its
 * mapped error, and a stream that ends before both `messageStop` and
 * `metadata` fails with `NetworkError`: it never ends clean.
 *
 * @internal
 */
import type { ConverseStreamOutput } from "@aws-sdk/client-bedrock-runtime"
import { LlmError } from "@switchboard/core"
import { Decode, type StreamAccumulator } from "@switchboard/core/provider"
import { Schema } from "effect"
import { toLlmError } from "./errors.ts"
import { finishReason, isAbsent, isPlainUsage, isRecord, isTextOrAbsent, usageOf, WireUsage } from "./mapping.ts"

/** What the table needs to know about the call. */
export interface StreamContext {
  readonly formatTool: string | undefined
  /** The secrets to scrub from an error, read only when an event proves one. */
  readonly secrets: () => ReadonlyArray<string | undefined>
  readonly timeoutMs: number | undefined
}

const Exception = Schema.optional(Schema.NullOr(Schema.Struct({ message: Schema.optional(Schema.NullOr(Schema.String)) })))

const WireEvent = Schema.Struct({
  contentBlockStart: Schema.optional(Schema.NullOr(Schema.Struct({
    contentBlockIndex: Schema.optional(Schema.NullOr(Schema.Number)),
    start: Schema.optional(Schema.NullOr(Schema.Struct({
      toolUse: Schema.optional(Schema.NullOr(Schema.Struct({
        toolUseId: Schema.optional(Schema.NullOr(Schema.String)),
        name: Schema.optional(Schema.NullOr(Schema.String))
      })))
    })))
  }))),
  contentBlockDelta: Schema.optional(Schema.NullOr(Schema.Struct({
    contentBlockIndex: Schema.optional(Schema.NullOr(Schema.Number)),
    delta: Schema.optional(Schema.NullOr(Schema.Struct({
      text: Decode.OptionalText,
      toolUse: Schema.optional(Schema.NullOr(Schema.Struct({ input: Decode.OptionalText }))),
      reasoningContent: Schema.optional(Schema.NullOr(Schema.Struct({ text: Decode.OptionalText })))
    })))
  }))),
  messageStop: Schema.optional(Schema.NullOr(Schema.Struct({ stopReason: Schema.optional(Schema.NullOr(Schema.String)) }))),
  metadata: Schema.optional(Schema.NullOr(Schema.Struct({ usage: Schema.optional(Schema.NullOr(WireUsage)) }))),
  throttlingException: Exception,
  serviceUnavailableException: Exception,
  validationException: Exception,
  internalServerException: Exception,
  modelStreamErrorException: Exception
})

const decodeEventWithSchema = Decode.bodyDecoder(WireEvent, "a ConverseStream event")

// The fast path of the common events (message start, text and reasoning deltas, block stop, message
// stop, metadata): a hand-written check strictly narrower than `WireEvent`, so an event it accepts is one
// the Schema accepts too, read the same way (the table reads only the Schema's fields). A block start, a
// tool-use delta, an exception, anything else, and every error message, go to the Schema.
// `test/fastpath.test.ts` holds it to the Schema.
const isIndexOrAbsent = (u: unknown): boolean => isAbsent(u) || Number.isSafeInteger(u)
const isPlainEvent = (raw: unknown): raw is typeof WireEvent.Type => {
  if (!isRecord(raw) || raw["contentBlockStart"] !== undefined) return false
  for (const key of exceptionKeys) if (raw[key] !== undefined) return false
  const block = raw["contentBlockDelta"]
  if (!isAbsent(block)) {
    if (!isRecord(block) || !isIndexOrAbsent(block["contentBlockIndex"])) return false
    const delta = block["delta"]
    if (!isAbsent(delta)) {
      if (!isRecord(delta) || !isTextOrAbsent(delta["text"]) || delta["toolUse"] !== undefined) return false
      const reasoning = delta["reasoningContent"]
      if (!isAbsent(reasoning) && !(isRecord(reasoning) && isTextOrAbsent(reasoning["text"]))) return false
    }
  }
  const stop = raw["messageStop"]
  if (!isAbsent(stop) && !(isRecord(stop) && isTextOrAbsent(stop["stopReason"]))) return false
  const metadata = raw["metadata"]
  return isAbsent(metadata) || (isRecord(metadata) && isPlainUsage(metadata["usage"]))
}

/** A stream event as the table reads it: the fast path when it applies, else the Schema. @internal */
export const decodeEvent = (
  raw: unknown,
  origin: { readonly provider: string; readonly model?: string | undefined }
): typeof WireEvent.Type | LlmError.MalformedResponse => isPlainEvent(raw) ? raw : decodeEventWithSchema(raw, origin)

/** {@link decodeEvent} through the Schema alone (`test/fastpath.test.ts` holds the fast path to it). @internal */
export const decodeEventSchemaOnly = (
  raw: unknown,
  origin: { readonly provider: string; readonly model?: string | undefined }
): typeof WireEvent.Type | LlmError.MalformedResponse => decodeEventWithSchema(raw, origin)

/** A decoded ConverseStream event. @internal */
export type WireEvent = typeof WireEvent.Type

const exceptionKeys = [
  "throttlingException",
  "serviceUnavailableException",
  "validationException",
  "internalServerException",
  "modelStreamErrorException"
] as const

const upper = (key: string) => key.charAt(0).toUpperCase() + key.slice(1)

/**
 * The table of one ConverseStream: event → deltas, or the error it proves.
 * The finish is given once both `messageStop` and `metadata` came.
 *
 * @internal
 */
export const table = (context: StreamContext): StreamAccumulator.Table<ConverseStreamOutput> => {
  const kinds = new Map<number, "tool" | "format">()
  let stopReason: string | undefined
  let stopped = false
  let metadata = false
  let formatted = false
  const finished = (): ReadonlyArray<StreamAccumulator.Delta> =>
    stopped && metadata ? [{ _tag: "finish", reason: finishReason(stopReason, formatted), raw: stopReason ?? null }] : []
  return (raw, acc) => {
    const origin = { provider: acc.provider, model: acc.model }
    const event = decodeEvent(raw, origin)
    if (event instanceof LlmError.MalformedResponse) return event
    for (const key of exceptionKeys) {
      const exception = event[key]
      if (exception !== undefined && exception !== null) {
        return toLlmError({ name: upper(key), message: exception.message ?? key }, {
          ...origin,
          secrets: context.secrets(),
          timeoutMs: context.timeoutMs
        })
      }
    }
    if (event.contentBlockStart) {
      const index = event.contentBlockStart.contentBlockIndex ?? 0
      const toolUse = event.contentBlockStart.start?.toolUse
      if (toolUse) {
        const id = toolUse.toolUseId ?? `tooluse_${index}`
        if (typeof toolUse.name !== "string" || toolUse.name.length === 0) {
          return new LlmError.MalformedResponse({ ...origin, detail: `toolUse ${id} has no name` })
        }
        if (context.formatTool !== undefined && toolUse.name === context.formatTool) {
          kinds.set(index, "format")
          formatted = true
          return []
        }
        kinds.set(index, "tool")
        return [{ _tag: "tool", index, id, name: toolUse.name, input: "" }]
      }
      return []
    }
    if (event.contentBlockDelta) {
      const index = event.contentBlockDelta.contentBlockIndex ?? 0
      const delta = event.contentBlockDelta.delta
      if (!delta) return []
      if (typeof delta.text === "string") return [{ _tag: "text", text: delta.text }]
      if (delta.toolUse) {
        const input = delta.toolUse.input ?? ""
        const kind = kinds.get(index)
        if (kind === "format") return [{ _tag: "text", text: input }]
        if (kind === undefined) {
          return new LlmError.MalformedResponse({ ...origin, detail: `a toolUse delta for block ${index}, which never started` })
        }
        return [{ _tag: "tool", index, input }]
      }
      if (delta.reasoningContent) return [{ _tag: "reasoning", text: delta.reasoningContent.text ?? "" }]
      return []
    }
    if (event.messageStop) {
      stopped = true
      stopReason = event.messageStop.stopReason ?? undefined
      return finished()
    }
    if (event.metadata) {
      metadata = true
      const usage: ReadonlyArray<StreamAccumulator.Delta> = [{ _tag: "usage", usage: usageOf(event.metadata.usage) }]
      return [...usage, ...finished()]
    }
    return []
  }
}
