/**
 * Pure translation between Switchboard's request/response data and the
 * Anthropic Messages API shapes: request → `MessageCreateParams`, `Message`
 * → `LlmResponse`, stop reasons and usage.
 *
 * @internal
 */
import type * as Api from "@anthropic-ai/sdk/resources/messages"
import { LlmError } from "@switchboard/core"
import { Decode } from "@switchboard/core/provider"
import { Schema } from "effect"
import type { LlmRequest as Req, LlmResponse as Res } from "@switchboard/core"

type Request = Req.LlmRequest
type Part = Req.Part
type ToolCallPart = Req.ToolCallPart
type FinishReason = Res.FinishReason
type Usage = Res.Usage

/** The tool-call-forcing emulation of `responseFormat: json-schema`. */
export interface JsonTool {
  readonly name: string
}

/** What {@link toParams} built, plus how to read the answer back. */
export interface Prepared {
  readonly params: Api.MessageCreateParamsBase
  /** Set when a json-schema response format is emulated by a forced tool. */
  readonly jsonTool: JsonTool | undefined
}

/** The system instruction that emulates JSON mode (Anthropic has none). */
export const JSON_INSTRUCTION =
  "Answer with a single valid JSON value only: no prose before or after it, no Markdown code fences."

const toolNamePattern = /^[a-zA-Z0-9_-]{1,64}$/

const jsonToolName = (name: string, taken: ReadonlySet<string>): string => {
  let base = name.replace(/[^a-zA-Z0-9_-]/g, "_").slice(0, 64)
  if (!toolNamePattern.test(base)) base = "json_response"
  let candidate = base
  for (let i = 2; taken.has(candidate); i++) candidate = `${base.slice(0, 60)}_${i}`
  return candidate
}

const dataUrl = /^data:([^;,]+);base64,(.*)$/s

const imageBlock = (part: Req.ImagePart): Api.ImageBlockParam => {
  if (part.data !== undefined) {
    return {
      type: "image",
      source: {
        type: "base64",
        media_type: (part.mediaType ?? "image/png") as Api.Base64ImageSource["media_type"],
        data: part.data
      }
    }
  }
  const url = part.url ?? ""
  const inline = dataUrl.exec(url)
  if (inline !== null) {
    return {
      type: "image",
      source: { type: "base64", media_type: inline[1] as Api.Base64ImageSource["media_type"], data: inline[2]! }
    }
  }
  return { type: "image", source: { type: "url", url } }
}

const toolResultContent = (output: unknown): string =>
  typeof output === "string" ? output : JSON.stringify(output) ?? "null"

const ephemeral: Api.CacheControlEphemeral = { type: "ephemeral" }

const block = (part: Part): Api.ContentBlockParam => {
  switch (part.type) {
    case "text":
      // A prompt-cache breakpoint: Anthropic caches the prompt up to and including this block.
      return part.cache === true ? { type: "text", text: part.text, cache_control: ephemeral } : { type: "text", text: part.text }
    case "image":
      return imageBlock(part)
    case "tool-call":
      return { type: "tool_use", id: part.id, name: part.name, input: part.input ?? {} }
    case "tool-result":
      return {
        type: "tool_result",
        tool_use_id: part.toolCallId,
        content: toolResultContent(part.output),
        ...(part.isError === true ? { is_error: true } : {})
      }
  }
}

/**
 * The top-level `system` prompt: `request.system` and every role "system"
 * message, in order, joined by a blank line.
 */
export const systemOf = (request: Request): string | undefined => {
  const texts: Array<string> = []
  if (request.system !== undefined && request.system.length > 0) texts.push(request.system)
  for (const message of request.messages) {
    if (message.role !== "system") continue
    const text = typeof message.content === "string"
      ? message.content
      : message.content.map((p) => (p.type === "text" ? p.text : "")).join("")
    if (text.length > 0) texts.push(text)
  }
  return texts.length === 0 ? undefined : texts.join("\n\n")
}

/**
 * The top-level `system` as blocks when a role "system" message marks a
 * prompt-cache breakpoint (`cache: true` on a text part): the marked
 * message's block carries `cache_control`. `undefined` when nothing is
 * marked (the plain string form is sent).
 */
export const systemBlocksOf = (request: Request): Array<Api.TextBlockParam> | undefined => {
  const marked = request.messages.some((m) =>
    m.role === "system" && typeof m.content !== "string" && m.content.some((p) => p.type === "text" && p.cache === true)
  )
  if (!marked) return undefined
  const blocks: Array<Api.TextBlockParam> = []
  if (request.system !== undefined && request.system.length > 0) blocks.push({ type: "text", text: request.system })
  for (const message of request.messages) {
    if (message.role !== "system") continue
    if (typeof message.content === "string") {
      if (message.content.length > 0) blocks.push({ type: "text", text: message.content })
      continue
    }
    const text = message.content.map((p) => (p.type === "text" ? p.text : "")).join("")
    const cached = message.content.some((p) => p.type === "text" && p.cache === true)
    if (text.length > 0) blocks.push(cached ? { type: "text", text, cache_control: ephemeral } : { type: "text", text })
  }
  return blocks
}

/**
 * The conversation as Anthropic messages: system messages lifted out, "tool"
 * messages sent as user messages of `tool_result` blocks, and consecutive
 * messages of the same role merged (tool results must all sit in the user
 * turn right after the assistant's `tool_use`).
 */
export const messagesOf = (request: Request): Array<Api.MessageParam> => {
  const out: Array<{ role: "user" | "assistant"; content: Array<Api.ContentBlockParam> | string }> = []
  for (const message of request.messages) {
    if (message.role === "system") continue
    const role = message.role === "assistant" ? "assistant" : "user"
    const content: Array<Api.ContentBlockParam> | string = typeof message.content === "string"
      ? message.content
      : message.content.map(block)
    const last = out[out.length - 1]
    if (last !== undefined && last.role === role) {
      const asBlocks = (c: Array<Api.ContentBlockParam> | string): Array<Api.ContentBlockParam> =>
        typeof c === "string" ? (c.length === 0 ? [] : [{ type: "text", text: c }]) : c
      last.content = [...asBlocks(last.content), ...asBlocks(content)]
    } else {
      out.push({ role, content })
    }
  }
  return out
}

const toolChoiceOf = (choice: Req.ToolChoice): Api.ToolChoice => {
  if (typeof choice === "object") return { type: "tool", name: choice.name }
  switch (choice) {
    case "auto":
      return { type: "auto" }
    case "none":
      return { type: "none" }
    case "required":
      return { type: "any" }
  }
}

const inputSchema = (schema: Readonly<Record<string, unknown>>): Api.Tool.InputSchema =>
  ({ ...schema, type: "object" }) as Api.Tool.InputSchema

/**
 * Builds the Messages API parameters for a request (defaults already merged).
 * `maxTokens` is required by Anthropic; the caller resolves it.
 */
export const toParams = (request: Request, model: string, maxTokens: number): Prepared => {
  const tools: Array<Api.Tool> = (request.tools ?? []).map((tool) => ({
    name: tool.name,
    ...(tool.description !== undefined ? { description: tool.description } : {}),
    input_schema: inputSchema(tool.parameters)
  }))
  let toolChoice = request.toolChoice === undefined ? undefined : toolChoiceOf(request.toolChoice)
  let system = systemOf(request)
  let jsonTool: JsonTool | undefined
  const format = request.responseFormat
  if (format !== undefined && format.type === "json") {
    system = system === undefined ? JSON_INSTRUCTION : `${system}\n\n${JSON_INSTRUCTION}`
  } else if (format !== undefined && format.type === "json-schema") {
    const name = jsonToolName(format.name, new Set(tools.map((t) => t.name)))
    tools.push({
      name,
      description: `Give the final answer by calling this tool: its input is the answer, a JSON value matching the "${format.name}" schema.`,
      input_schema: inputSchema(format.schema)
    })
    toolChoice = { type: "tool", name }
    jsonTool = { name }
  }
  const blocks = systemBlocksOf(request)
  const systemParam: string | Array<Api.TextBlockParam> | undefined = blocks === undefined
    ? system
    : format !== undefined && format.type === "json"
    ? [...blocks, { type: "text", text: JSON_INSTRUCTION }]
    : blocks
  const params: Api.MessageCreateParamsBase = {
    model,
    max_tokens: maxTokens,
    messages: messagesOf(request),
    ...(systemParam !== undefined ? { system: systemParam } : {}),
    ...(request.temperature !== undefined ? { temperature: request.temperature } : {}),
    ...(request.topP !== undefined ? { top_p: request.topP } : {}),
    ...(request.stop !== undefined && request.stop.length > 0 ? { stop_sequences: [...request.stop] } : {}),
    ...(tools.length > 0 ? { tools } : {}),
    ...(toolChoice !== undefined && (tools.length > 0 || toolChoice.type === "none") ? { tool_choice: toolChoice } : {})
  }
  return { params, jsonTool }
}

/** Anthropic's `stop_reason` as a Switchboard finish reason. */
export const finishReasonOf = (reason: string | null | undefined): FinishReason => {
  switch (reason) {
    case "end_turn":
    case "stop_sequence":
      return "stop"
    case "max_tokens":
    case "model_context_window_exceeded":
      return "length"
    case "tool_use":
      return "tool-calls"
    case "refusal":
      return "content-filter"
    default:
      return "other"
  }
}

/**
 * An Anthropic usage object (message or delta), decoded: every count a
 * non-negative safe integer or absent.
 */
export const WireUsage = Schema.Struct({
  input_tokens: Decode.OptionalCount,
  output_tokens: Decode.OptionalCount,
  cache_read_input_tokens: Decode.OptionalCount,
  cache_creation_input_tokens: Decode.OptionalCount,
  output_tokens_details: Schema.optional(Schema.NullOr(Schema.Struct({ thinking_tokens: Decode.OptionalCount })))
})

/** The counts of an Anthropic usage object (message or delta). */
export type RawUsage = typeof WireUsage.Type

const n = (value: number | null | undefined): number => value ?? 0

/**
 * Usage in Switchboard's convention: `inputTokens` counts every prompt token
 * (Anthropic's `input_tokens` excludes cache reads and writes, so both are
 * added back), cached reads and writes reported on their own.
 */
export const usageOf = (usage: RawUsage | null | undefined): Usage => {
  const cacheRead = n(usage?.cache_read_input_tokens)
  const cacheWrite = n(usage?.cache_creation_input_tokens)
  const inputTokens = n(usage?.input_tokens) + cacheRead + cacheWrite
  const outputTokens = n(usage?.output_tokens)
  return {
    inputTokens,
    outputTokens,
    cachedInputTokens: cacheRead,
    cacheWriteTokens: cacheWrite,
    reasoningTokens: n(usage?.output_tokens_details?.thinking_tokens),
    totalTokens: inputTokens + outputTokens
  }
}

/**
 * A content block, decoded: text and thinking must be strings where present;
 * a `tool_use` block's name is checked by the reader (a nameless call is
 * malformed, never dropped).
 */
export const WireBlock = Schema.Struct({
  type: Schema.String,
  text: Decode.OptionalText,
  thinking: Decode.OptionalText,
  id: Schema.optional(Schema.NullOr(Schema.String)),
  name: Schema.optional(Schema.NullOr(Schema.String)),
  input: Schema.optional(Schema.Unknown)
})

const WireMessage = Schema.Struct({
  id: Schema.optional(Schema.NullOr(Schema.String)),
  model: Schema.optional(Schema.NullOr(Schema.String)),
  content: Schema.Array(WireBlock),
  stop_reason: Schema.optional(Schema.NullOr(Schema.String)),
  usage: Schema.optional(Schema.NullOr(WireUsage))
})

/** A decoded `message` body. */
export type WireMessage = typeof WireMessage.Type

const decodeMessageWithSchema = Decode.bodyDecoder(WireMessage, "the message")

// The fast path of the common answer (text blocks only): a hand-written check strictly narrower than
// `WireMessage`, so a body it accepts is one the Schema accepts too, read the same way (the mapping reads
// only the Schema's fields). Everything else (tool use, thinking, any doubt), and every error message,
// goes to the Schema. `test/fastpath.test.ts` holds it to the Schema.
/** @internal */
export const isRecord = (u: unknown): u is Record<string, unknown> =>
  typeof u === "object" && u !== null && !Array.isArray(u)
const isCountOrAbsent = (u: unknown): boolean =>
  u === undefined || u === null || (typeof u === "number" && Number.isSafeInteger(u) && u >= 0)
/** @internal */
export const isTextOrAbsent = (u: unknown): boolean => u === undefined || u === null || typeof u === "string"
/** A usage object (message or delta) the Schema accepts, by a check narrower than it. @internal */
export const isPlainUsage = (u: unknown): boolean => {
  if (u === undefined || u === null) return true
  if (!isRecord(u)) return false
  if (
    !isCountOrAbsent(u["input_tokens"]) || !isCountOrAbsent(u["output_tokens"]) ||
    !isCountOrAbsent(u["cache_read_input_tokens"]) || !isCountOrAbsent(u["cache_creation_input_tokens"])
  ) return false
  const details = u["output_tokens_details"]
  return details === undefined || details === null || (isRecord(details) && isCountOrAbsent(details["thinking_tokens"]))
}
const isPlainMessage = (body: unknown): body is WireMessage => {
  if (
    !isRecord(body) || !isTextOrAbsent(body["id"]) || !isTextOrAbsent(body["model"]) ||
    !isTextOrAbsent(body["stop_reason"]) || !isPlainUsage(body["usage"])
  ) return false
  const content = body["content"]
  if (!Array.isArray(content)) return false
  for (const block of content) {
    if (
      !isRecord(block) || block["type"] !== "text" || typeof block["text"] !== "string" ||
      block["thinking"] !== undefined || block["id"] !== undefined || block["name"] !== undefined
    ) return false
  }
  return true
}

/** A `message` body as the mapping reads it: the fast path when it applies, else the Schema. @internal */
export const decodeMessage = (body: unknown, origin: Origin): WireMessage | LlmError.MalformedResponse =>
  isPlainMessage(body) ? body : decodeMessageWithSchema(body, origin)

/** {@link decodeMessage} through the Schema alone (`test/fastpath.test.ts` holds the fast path to it). @internal */
export const decodeMessageSchemaOnly = (body: unknown, origin: Origin): WireMessage | LlmError.MalformedResponse =>
  decodeMessageWithSchema(body, origin)

/** What the response builder needs besides the message. */
export interface Origin {
  readonly provider: string
  readonly model: string
}

/** The parts of an answer, before the response envelope. */
export interface Answer {
  readonly text: string
  readonly content: ReadonlyArray<Part>
  readonly toolCalls: ReadonlyArray<ToolCallPart>
  readonly finishReason: FinishReason
}

/**
 * Reads the content blocks of a message: text and tool calls in order;
 * thinking is left out of `text` and `content`. With a json-schema tool, the
 * forced tool's input becomes the text and the finish reason `stop`.
 */
export const answerOf = (
  blocks: ReadonlyArray<{ readonly type: string; readonly [key: string]: unknown }>,
  stopReason: string | null | undefined,
  jsonTool: JsonTool | undefined,
  origin?: Origin | undefined
): Answer | LlmError.MalformedResponse => {
  const content: Array<Part> = []
  const toolCalls: Array<ToolCallPart> = []
  let text = ""
  let answeredByTool = false
  for (const b of blocks) {
    if (b.type === "text" && typeof b.text === "string") {
      if (jsonTool !== undefined) continue
      text += b.text
      content.push({ type: "text", text: b.text })
    } else if (b.type === "tool_use") {
      if (typeof b.name !== "string" || b.name.length === 0) {
        return new LlmError.MalformedResponse({
          provider: origin?.provider ?? "anthropic",
          model: origin?.model,
          detail: `tool_use block ${typeof b.id === "string" ? b.id : "(no id)"} has no name`
        })
      }
      const id = typeof b.id === "string" ? b.id : `toolu_${toolCalls.length}`
      if (jsonTool !== undefined && b.name === jsonTool.name) {
        const json = JSON.stringify(b.input ?? {})
        text += json
        content.push({ type: "text", text: json })
        answeredByTool = true
        continue
      }
      const call: ToolCallPart = { type: "tool-call", id, name: b.name, input: b.input ?? {} }
      toolCalls.push(call)
      content.push(call)
    }
  }
  const finishReason = answeredByTool && toolCalls.length === 0 && stopReason === "tool_use"
    ? "stop"
    : finishReasonOf(stopReason)
  return { text, content, toolCalls, finishReason }
}

/**
 * Decodes a non-streamed body as a Messages API `message`, or says what is
 * wrong with it (usage, text types, no content array, `null`).
 */
export const checkMessage = (body: unknown, origin: Origin): WireMessage | LlmError.MalformedResponse =>
  decodeMessage(body, origin)

/**
 * Parses the accumulated `partial_json` of a streamed tool call (`""` is an
 * empty input object).
 */
export const parseToolInput = (json: string, origin: Origin, tool: string): unknown | LlmError.MalformedResponse => {
  if (json.trim() === "") return {}
  try {
    return JSON.parse(json) as unknown
  } catch {
    return new LlmError.MalformedResponse({
      ...origin,
      detail: `the input of tool call "${tool}" is not valid JSON`
    })
  }
}

/** True for the value {@link parseToolInput} / {@link checkMessage} fail with. */
export const isMalformed = (u: unknown): u is LlmError.MalformedResponse =>
  u instanceof LlmError.MalformedResponse
