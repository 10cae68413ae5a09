/**
 * ConverseStream events to Switchboard stream parts. Text deltas become
 * `text-delta`, reasoning deltas `reasoning-delta`, tool-use starts and input
 * deltas `tool-call-delta`; the accumulated text, tool-call JSON, stop reason
 * and usage make the final `finish` part. An exception event fails the
 * stream with its mapped error, and a stream that ends before both
 * `messageStop` and `metadata` fails with `NetworkError`: it never ends clean.
 *
 * @internal
 */
import type { ConverseStreamOutput, TokenUsage } from "@aws-sdk/client-bedrock-runtime"
import { LlmError, type LlmRequest, type LlmResponse } from "@switchboard/core"
import { Clock, Effect, Stream } from "effect"
import { toLlmError } from "./errors.ts"
import { finishReason, usageOf } from "./mapping.ts"

/** What the stream mapping needs to build the final response. */
export interface StreamContext {
  readonly provider: string
  readonly model: string
  readonly id: string
  readonly formatTool: string | undefined
  readonly start: number
  readonly rateLimit: LlmResponse.RateLimitInfo | undefined
  readonly secrets: ReadonlyArray<string | undefined>
  readonly timeoutMs: number | undefined
}

interface Block {
  kind: "text" | "tool" | "format"
  text: string
  id: string
  name: string
}

const exceptionKeys = [
  "throttlingException",
  "serviceUnavailableException",
  "validationException",
  "internalServerException",
  "modelStreamErrorException"
] as const

const upper = (key: string) => key.charAt(0).toUpperCase() + key.slice(1)

/**
 * Maps the SDK's event stream (already lifted into a `Stream`) to parts.
 *
 * @internal
 */
export const toParts = (
  events: Stream.Stream<ConverseStreamOutput, LlmError.LlmError>,
  context: StreamContext
): Stream.Stream<LlmResponse.StreamPart, LlmError.LlmError> =>
  Stream.suspend(() => {
    const origin = { provider: context.provider, model: context.model }
    const blocks = new Map<number, Block>()
    let stopReason: string | undefined
    let usage: TokenUsage | undefined
    let metrics: unknown
    let additional: unknown
    let stopped = false
    let metadata = false

    const blockAt = (index: number, kind: Block["kind"]): Block => {
      let block = blocks.get(index)
      if (block === undefined) {
        block = { kind, text: "", id: "", name: "" }
        blocks.set(index, block)
      }
      return block
    }

    const step = (event: ConverseStreamOutput): ReadonlyArray<LlmResponse.StreamPart> | LlmError.LlmError => {
      for (const key of exceptionKeys) {
        const exception = (event as unknown as Record<string, { message?: string } | undefined>)[key]
        if (exception !== undefined) {
          return toLlmError({ name: upper(key), message: exception.message ?? key }, {
            ...origin,
            secrets: context.secrets,
            timeoutMs: context.timeoutMs
          })
        }
      }
      if (event.contentBlockStart !== undefined) {
        const index = event.contentBlockStart.contentBlockIndex ?? 0
        const toolUse = event.contentBlockStart.start?.toolUse
        if (toolUse !== undefined) {
          const name = toolUse.name ?? ""
          const format = context.formatTool !== undefined && name === context.formatTool
          const block = blockAt(index, format ? "format" : "tool")
          block.id = toolUse.toolUseId ?? ""
          block.name = name
          if (!format) return [{ type: "tool-call-delta", id: block.id, name, inputDelta: "" }]
        }
        return []
      }
      if (event.contentBlockDelta !== undefined) {
        const index = event.contentBlockDelta.contentBlockIndex ?? 0
        const delta = event.contentBlockDelta.delta
        if (delta === undefined) return []
        if (delta.text !== undefined) {
          blockAt(index, "text").text += delta.text
          return delta.text.length === 0 ? [] : [{ type: "text-delta", text: delta.text }]
        }
        if (delta.toolUse !== undefined) {
          const block = blockAt(index, "tool")
          const input = delta.toolUse.input ?? ""
          block.text += input
          if (input.length === 0) return []
          return block.kind === "format"
            ? [{ type: "text-delta", text: input }]
            : [{ type: "tool-call-delta", id: block.id, inputDelta: input }]
        }
        if (delta.reasoningContent !== undefined) {
          const text = delta.reasoningContent.text
          return text === undefined || text.length === 0 ? [] : [{ type: "reasoning-delta", text }]
        }
        return []
      }
      if (event.messageStop !== undefined) {
        stopped = true
        stopReason = event.messageStop.stopReason
        additional = event.messageStop.additionalModelResponseFields
        return []
      }
      if (event.metadata !== undefined) {
        metadata = true
        usage = event.metadata.usage
        metrics = event.metadata.metrics
        return []
      }
      return []
    }

    const finish = Effect.suspend((): Effect.Effect<LlmResponse.StreamPart, LlmError.LlmError> => {
      if (!stopped || !metadata) {
        return Effect.fail(
          new LlmError.NetworkError({
            ...origin,
            detail: `the ConverseStream ended before its ${stopped ? "metadata" : "messageStop"} event`
          })
        )
      }
      const content: Array<LlmRequest.Part> = []
      const toolCalls: Array<LlmRequest.ToolCallPart> = []
      let text = ""
      let formatted = false
      for (const index of [...blocks.keys()].sort((a, b) => a - b)) {
        const block = blocks.get(index)!
        if (block.kind === "text") {
          if (block.text.length === 0) continue
          text += block.text
          content.push({ type: "text", text: block.text })
          continue
        }
        if (block.kind === "format") {
          formatted = true
          text += block.text
          content.push({ type: "text", text: block.text })
          continue
        }
        let input: unknown
        try {
          input = block.text.trim().length === 0 ? {} : JSON.parse(block.text)
        } catch {
          return Effect.fail(
            new LlmError.MalformedResponse({
              ...origin,
              detail: `the input of tool call ${block.id} (${block.name}) is not valid JSON`
            })
          )
        }
        const call: LlmRequest.ToolCallPart = { type: "tool-call", id: block.id, name: block.name, input }
        toolCalls.push(call)
        content.push(call)
      }
      return Effect.map(Clock.currentTimeMillis, (now): LlmResponse.StreamPart => ({
        type: "finish",
        response: {
          id: context.id,
          provider: context.provider,
          model: context.model,
          text,
          content,
          toolCalls,
          finishReason: finishReason(stopReason, formatted),
          usage: usageOf(usage),
          costUsd: 0,
          latencyMs: now - context.start,
          cached: false,
          attempts: [],
          ...(context.rateLimit !== undefined ? { rateLimit: context.rateLimit } : {}),
          raw: {
            stopReason,
            usage,
            metrics,
            ...(additional !== undefined ? { additionalModelResponseFields: additional } : {})
          }
        }
      }))
    })

    return events.pipe(
      Stream.mapEffect((event) => {
        const parts = step(event)
        return Array.isArray(parts)
          ? Effect.succeed(parts as ReadonlyArray<LlmResponse.StreamPart>)
          : Effect.fail(parts as LlmError.LlmError)
      }),
      Stream.flattenIterable,
      Stream.concat(Stream.fromEffect(finish))
    )
  })
