/**
 * Converse request and response mapping: a Switchboard `LlmRequest` becomes a
 * `ConverseCommandInput` (system blocks, alternating user/assistant messages
 * of text / image / toolUse / toolResult blocks, `toolConfig`,
 * `inferenceConfig`), and a `ConverseCommandOutput` becomes an `LlmResponse`
 * (text, tool calls, finish reason, usage with cache tokens folded into
 * `inputTokens`).
 *
 * Converse has no JSON mode: `{ type: "json" }` adds a system instruction,
 * `{ type: "json-schema" }` forces a tool whose input schema is the requested
 * schema and turns its input back into the answer's text (or, when the
 * request has tools of its own, adds the schema to the system instruction).
 *
 * @internal
 */
import type {
  ContentBlock,
  ConverseCommandInput,
  ConverseCommandOutput,
  ImageFormat,
  InferenceConfiguration,
  Message,
  SystemContentBlock,
  Tool,
  ToolChoice,
  ToolResultContentBlock
} from "@aws-sdk/client-bedrock-runtime"
import { LlmError, LlmRequest, LlmResponse } from "@switchboard/core"
import { Decode } from "@switchboard/core/provider"
import { Schema } from "effect"

/** A request ready to send, and the name of the tool that carries a JSON-schema answer, if any. */
export interface Prepared {
  readonly input: ConverseCommandInput
  readonly formatTool: string | undefined
}

interface Origin {
  readonly provider: string
  readonly model: string
}

const invalid = (origin: Origin, field: string, message: string) =>
  new LlmError.InvalidRequest({ ...origin, field, message: `${field}: ${message}` })

const formats: Record<string, ImageFormat> = {
  "image/png": "png",
  "image/jpeg": "jpeg",
  "image/jpg": "jpeg",
  "image/gif": "gif",
  "image/webp": "webp"
}

const extensionFormats: Record<string, ImageFormat> = { png: "png", jpg: "jpeg", jpeg: "jpeg", gif: "gif", webp: "webp" }

/** Instruction added to the system prompt for `responseFormat: { type: "json" }`. */
export const jsonInstruction =
  "Respond with a single valid JSON object only. Do not wrap it in Markdown code fences and do not add any other text."

/** Instruction added when tool choice is "none" but the conversation holds tool blocks. */
export const noToolsInstruction = "Do not call any tool in this turn; answer with text."

const schemaInstruction = (schema: unknown) =>
  `When you give your final answer, respond with a single JSON value matching this JSON Schema, and nothing else (no Markdown code fences): ${
    JSON.stringify(schema)
  }`

const toolName = (name: string): string => {
  const cleaned = name.replace(/[^a-zA-Z0-9_-]/g, "_").slice(0, 64)
  return cleaned.length === 0 ? "json_response" : cleaned
}

const imageBlock = (
  part: LlmRequest.ImagePart,
  at: string,
  origin: Origin
): ContentBlock | LlmError.InvalidRequest => {
  let data = part.data
  let mediaType = part.mediaType
  if (data === undefined && part.url !== undefined) {
    const url = part.url
    const inline = /^data:([^;,]+)?(?:;[^,]*)?;base64,(.*)$/s.exec(url)
    if (inline !== null) {
      mediaType = mediaType ?? inline[1]
      data = inline[2]
    } else if (url.startsWith("s3://")) {
      const extension = /\.([a-z0-9]+)$/i.exec(url)?.[1]?.toLowerCase()
      const format = (mediaType === undefined ? undefined : formats[mediaType.toLowerCase()]) ??
        (extension === undefined ? undefined : extensionFormats[extension])
      if (format === undefined) {
        return invalid(origin, `${at}.mediaType`, "an s3:// image needs a mediaType of image/png, image/jpeg, image/gif or image/webp")
      }
      return { image: { format, source: { s3Location: { uri: url } } } }
    } else {
      return invalid(
        origin,
        `${at}.url`,
        "Bedrock Converse does not fetch image URLs; send the image as base64 `data` with its `mediaType` (or an s3:// URI)"
      )
    }
  }
  const format = mediaType === undefined ? undefined : formats[mediaType.toLowerCase()]
  if (format === undefined) {
    return invalid(
      origin,
      `${at}.mediaType`,
      `Bedrock Converse accepts image/png, image/jpeg, image/gif or image/webp, got ${JSON.stringify(mediaType ?? null)}`
    )
  }
  return { image: { format, source: { bytes: Buffer.from(data ?? "", "base64") } } }
}

const isObject = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

const toolResultContent = (output: unknown): Array<ToolResultContentBlock> => {
  if (typeof output === "string") return [{ text: output.length === 0 ? " " : output }]
  if (isObject(output)) return [{ json: output as never }]
  return [{ text: JSON.stringify(output) ?? "null" }]
}

const blocksOf = (
  message: LlmRequest.Message,
  at: string,
  origin: Origin
): Array<ContentBlock> | LlmError.InvalidRequest => {
  if (typeof message.content === "string") return message.content.length === 0 ? [] : [{ text: message.content }]
  const blocks: Array<ContentBlock> = []
  for (let j = 0; j < message.content.length; j++) {
    const part = message.content[j]!
    const partAt = `${at}.content[${j}]`
    switch (part.type) {
      case "text":
        if (part.text.length > 0) blocks.push({ text: part.text })
        // A prompt-cache breakpoint: Bedrock caches the prompt up to here.
        if (part.cache === true) blocks.push({ cachePoint: { type: "default" } })
        break
      case "image": {
        const block = imageBlock(part, partAt, origin)
        if (block instanceof LlmError.InvalidRequest) return block
        blocks.push(block)
        break
      }
      case "tool-call":
        blocks.push({
          toolUse: { toolUseId: part.id, name: part.name, input: (part.input ?? {}) as never }
        })
        break
      case "tool-result":
        blocks.push({
          toolResult: {
            toolUseId: part.toolCallId,
            content: toolResultContent(part.output),
            status: part.isError === true ? "error" : "success"
          }
        })
        break
    }
  }
  return blocks
}

/**
 * Builds the Converse input for a request. Fails with `InvalidRequest`
 * naming the field for what Converse cannot take (an http image URL, an
 * unsupported image type).
 *
 * @internal
 */
export const toConverseInput = (
  request: LlmRequest.LlmRequest,
  origin: Origin
): Prepared | LlmError.InvalidRequest => {
  const system: Array<SystemContentBlock> = []
  if (request.system !== undefined && request.system.length > 0) system.push({ text: request.system })
  const messages: Array<Message> = []
  const usedTools = new Set<string>()
  let toolBlocks = false
  for (let i = 0; i < request.messages.length; i++) {
    const message = request.messages[i]!
    const at = `messages[${i}]`
    if (message.role === "system") {
      const text = LlmRequest.contentText(message.content)
      if (text.length > 0) system.push({ text })
      if (typeof message.content !== "string" && message.content.some((part) => part.type === "text" && part.cache === true)) {
        system.push({ cachePoint: { type: "default" } })
      }
      continue
    }
    const blocks = blocksOf(message, at, origin)
    if (blocks instanceof LlmError.InvalidRequest) return blocks
    if (blocks.length === 0) continue
    for (const block of blocks) {
      if (block.toolUse !== undefined) {
        toolBlocks = true
        if (block.toolUse.name !== undefined) usedTools.add(block.toolUse.name)
      } else if (block.toolResult !== undefined) toolBlocks = true
    }
    // Converse wants user and assistant turns to alternate: tool results are
    // a user turn, and consecutive turns of one role are merged.
    const role = message.role === "assistant" ? "assistant" : "user"
    const last = messages[messages.length - 1]
    if (last !== undefined && last.role === role) last.content = [...(last.content ?? []), ...blocks]
    else messages.push({ role, content: blocks })
  }

  const tools: Array<Tool> = (request.tools ?? []).map((tool) => ({
    toolSpec: {
      name: tool.name,
      ...(tool.description !== undefined && tool.description.length > 0 ? { description: tool.description } : {}),
      inputSchema: { json: tool.parameters as never }
    }
  }))
  // Converse rejects toolUse / toolResult blocks unless `toolConfig` is set:
  // declare tools the history uses but the request no longer lists.
  for (const name of usedTools) {
    if (!tools.some((tool) => tool.toolSpec?.name === name)) {
      tools.push({ toolSpec: { name, inputSchema: { json: { type: "object" } as never } } })
    }
  }
  let toolChoice: ToolChoice | undefined
  const choice = request.toolChoice
  if (choice === "required") toolChoice = { any: {} }
  else if (choice === "auto") toolChoice = { auto: {} }
  else if (typeof choice === "object") toolChoice = { tool: { name: choice.name } }
  let sendTools = tools.length > 0
  if (choice === "none") {
    if (toolBlocks) system.push({ text: noToolsInstruction })
    else sendTools = false
  }

  let formatTool: string | undefined
  const format = request.responseFormat
  if (format !== undefined && format.type === "json") {
    system.push({ text: jsonInstruction })
  } else if (format !== undefined && format.type === "json-schema") {
    const ownTools = (request.tools ?? []).length > 0 && choice !== "none"
    if (ownTools) {
      system.push({ text: schemaInstruction(format.schema) })
    } else {
      formatTool = toolName(format.name)
      tools.push({
        toolSpec: {
          name: formatTool,
          description: "Give the final answer as the input of this tool. It must match the input schema.",
          inputSchema: { json: format.schema as never }
        }
      })
      toolChoice = { tool: { name: formatTool } }
      sendTools = true
    }
  }

  const inferenceConfig: InferenceConfiguration = {
    ...(request.maxTokens !== undefined ? { maxTokens: request.maxTokens } : {}),
    ...(request.temperature !== undefined ? { temperature: request.temperature } : {}),
    ...(request.topP !== undefined ? { topP: request.topP } : {}),
    ...(request.stop !== undefined && request.stop.length > 0 ? { stopSequences: [...request.stop] } : {})
  }
  const input: ConverseCommandInput = {
    modelId: origin.model,
    messages,
    ...(system.length > 0 ? { system } : {}),
    ...(Object.keys(inferenceConfig).length > 0 ? { inferenceConfig } : {}),
    ...(sendTools ? { toolConfig: { tools, ...(toolChoice !== undefined ? { toolChoice } : {}) } } : {})
  }
  return { input, formatTool }
}

/**
 * Maps a Converse `stopReason` to a finish reason. A forced JSON-schema tool
 * call is the answer, so it finishes as `"stop"`.
 *
 * @internal
 */
export const finishReason = (stopReason: string | undefined, formatted: boolean): LlmResponse.FinishReason => {
  switch (stopReason) {
    case "end_turn":
    case "stop_sequence":
      return "stop"
    case "max_tokens":
    case "model_context_window_exceeded":
      return "length"
    case "tool_use":
      return formatted ? "stop" : "tool-calls"
    case "guardrail_intervened":
    case "content_filtered":
      return "content-filter"
    default:
      return "other"
  }
}

/**
 * A Bedrock `usage`, decoded: every count a non-negative safe integer (a
 * `BigInt` the SDK parsed from a huge number, a negative, a fraction or a
 * string is refused).
 *
 * @internal
 */
export const WireUsage = Schema.Struct({
  inputTokens: Decode.OptionalCount,
  outputTokens: Decode.OptionalCount,
  totalTokens: Decode.OptionalCount,
  cacheReadInputTokens: Decode.OptionalCount,
  cacheWriteInputTokens: Decode.OptionalCount
})

/**
 * Bedrock's `inputTokens` leaves out cache reads and writes (the recorded
 * cache fixtures: inputTokens 2 + cacheWrite 1322 + output 5 = totalTokens
 * 1329), so Switchboard's `inputTokens` is their sum.
 *
 * @internal
 */
export const usageOf = (usage: typeof WireUsage.Type | null | undefined): LlmResponse.Usage => {
  const uncached = usage?.inputTokens ?? 0
  const cacheRead = usage?.cacheReadInputTokens ?? 0
  const cacheWrite = usage?.cacheWriteInputTokens ?? 0
  const inputTokens = uncached + cacheRead + cacheWrite
  const outputTokens = usage?.outputTokens ?? 0
  return LlmResponse.makeUsage({
    inputTokens,
    outputTokens,
    cachedInputTokens: cacheRead,
    cacheWriteTokens: cacheWrite,
    totalTokens: inputTokens + outputTokens
  })
}

const WireToolUse = Schema.Struct({
  toolUseId: Schema.optional(Schema.NullOr(Schema.String)),
  name: Schema.optional(Schema.NullOr(Schema.String)),
  input: Schema.optional(Schema.Unknown)
})

const WireOutput = Schema.Struct({
  output: Schema.Struct({
    message: Schema.Struct({
      content: Schema.Array(Schema.Struct({
        text: Decode.OptionalText,
        toolUse: Schema.optional(Schema.NullOr(WireToolUse))
      }))
    })
  }),
  stopReason: Schema.optional(Schema.NullOr(Schema.String)),
  usage: Schema.optional(Schema.NullOr(WireUsage))
})

const decodeOutputWithSchema = Decode.bodyDecoder(WireOutput, "the Converse output")

// The fast path of the common output (text blocks only): a hand-written check strictly narrower than
// `WireOutput`, so an output it accepts is one the Schema accepts too, read the same way (the mapping reads
// only the Schema's fields). Everything else (tool use, reasoning blocks, a `BigInt` count, any doubt), and
// every error message, goes to the Schema. `test/fastpath.test.ts` holds it to the Schema.
/** @internal */
export const isRecord = (u: unknown): u is Record<string, unknown> =>
  typeof u === "object" && u !== null && !Array.isArray(u)
/** @internal */
export const isAbsent = (u: unknown): boolean => u === undefined || u === null
/** @internal */
export const isTextOrAbsent = (u: unknown): boolean => isAbsent(u) || typeof u === "string"
const isCountOrAbsent = (u: unknown): boolean =>
  isAbsent(u) || (typeof u === "number" && Number.isSafeInteger(u) && u >= 0)
/** A `usage` (absent, `null` or plain counts) the Schema accepts, by a check narrower than it. @internal */
export const isPlainUsage = (usage: unknown): boolean =>
  isAbsent(usage) ||
  (isRecord(usage) && isCountOrAbsent(usage["inputTokens"]) && isCountOrAbsent(usage["outputTokens"]) &&
    isCountOrAbsent(usage["totalTokens"]) && isCountOrAbsent(usage["cacheReadInputTokens"]) &&
    isCountOrAbsent(usage["cacheWriteInputTokens"]))
const isPlainOutput = (body: unknown): body is typeof WireOutput.Type => {
  if (!isRecord(body) || !isTextOrAbsent(body["stopReason"]) || !isPlainUsage(body["usage"])) return false
  const output = body["output"]
  if (!isRecord(output)) return false
  const message = output["message"]
  if (!isRecord(message)) return false
  const content = message["content"]
  if (!Array.isArray(content)) return false
  for (const block of content) {
    if (!isRecord(block) || typeof block["text"] !== "string" || block["toolUse"] !== undefined) return false
  }
  return true
}

/** A Converse output as the mapping reads it: the fast path when it applies, else the Schema. @internal */
export const decodeOutput = (body: unknown, origin: Origin): typeof WireOutput.Type | LlmError.MalformedResponse =>
  isPlainOutput(body) ? body : decodeOutputWithSchema(body, origin)

/** {@link decodeOutput} through the Schema alone (`test/fastpath.test.ts` holds the fast path to it). @internal */
export const decodeOutputSchemaOnly = (body: unknown, origin: Origin): typeof WireOutput.Type | LlmError.MalformedResponse =>
  decodeOutputWithSchema(body, origin)

/** A decoded Converse output. @internal */
export type WireOutput = typeof WireOutput.Type

/** What the response mapping needs besides the SDK output. */
export interface ResponseContext extends Origin {
  readonly id: string
  readonly formatTool: string | undefined
  readonly latencyMs: number
  readonly rateLimit: LlmResponse.RateLimitInfo | undefined
}

/**
 * Maps a Converse output to a response (`costUsd` 0 and no attempts: the
 * leaf constructor fills them). Reasoning blocks are not text: they stay in
 * `raw` only.
 *
 * @internal
 */
export const fromConverseOutput = (
  output: ConverseCommandOutput,
  context: ResponseContext
): LlmResponse.LlmResponse | LlmError.MalformedResponse => {
  const origin = { provider: context.provider, model: context.model }
  const decoded = decodeOutput(output, origin)
  if (decoded instanceof LlmError.MalformedResponse) return decoded
  const { $metadata: _metadata, ...body } = output
  const content: Array<LlmRequest.Part> = []
  const toolCalls: Array<LlmRequest.ToolCallPart> = []
  let text = ""
  let formatted = false
  for (const block of decoded.output.message.content) {
    if (typeof block.text === "string") {
      text += block.text
      content.push({ type: "text", text: block.text })
    } else if (block.toolUse !== undefined && block.toolUse !== null) {
      const name = block.toolUse.name ?? ""
      if (name.length === 0) {
        return new LlmError.MalformedResponse({
          ...origin,
          detail: `toolUse ${block.toolUse.toolUseId ?? "(no id)"} has no name`
        })
      }
      const input: unknown = block.toolUse.input ?? {}
      if (context.formatTool !== undefined && name === context.formatTool) {
        formatted = true
        const json = JSON.stringify(input)
        text += json
        content.push({ type: "text", text: json })
      } else {
        const call: LlmRequest.ToolCallPart = { type: "tool-call", id: block.toolUse.toolUseId ?? "", name, input }
        toolCalls.push(call)
        content.push(call)
      }
    }
  }
  return {
    id: context.id,
    provider: context.provider,
    model: context.model,
    text,
    content,
    toolCalls,
    finishReason: finishReason(decoded.stopReason ?? undefined, formatted),
    usage: usageOf(decoded.usage),
    costUsd: 0,
    latencyMs: context.latencyMs,
    cached: false,
    attempts: [],
    ...(context.rateLimit !== undefined ? { rateLimit: context.rateLimit } : {}),
    raw: body
  }
}
