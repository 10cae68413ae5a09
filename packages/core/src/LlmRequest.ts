/**
 * What a caller asks for: messages made of parts, sampling parameters, tools,
 * and the metadata combinators read (task, tenant, tags). Requests are plain
 * immutable objects described by `effect/Schema`, so they are written as
 * literals, compared and hashed cheaply, and decoded from untrusted input with
 * the exported schemas.
 *
 * {@link validate} checks the rules a schema cannot express (a tool result
 * needs its call, temperature in range, …) and fails with `InvalidRequest`
 * naming the field; every provider layer runs it before any network call.
 *
 * @since 0.1.0
 */
import { Duration, Effect, Schema } from "effect"
import { InvalidRequest } from "./LlmError.ts"

/**
 * A piece of text. `cache: true` marks a provider prompt-cache breakpoint
 * after it (Anthropic `cache_control`, Bedrock `cachePoint`).
 *
 * @since 0.1.0
 * @category models
 */
export const TextPart = Schema.Struct({
  type: Schema.Literal("text"),
  text: Schema.String,
  cache: Schema.optional(Schema.Boolean)
})
/** @since 0.1.0 @category models */
export type TextPart = typeof TextPart.Type

/**
 * An image, by URL or inline base64 `data` with its `mediaType`.
 *
 * @since 0.1.0
 * @category models
 */
export const ImagePart = Schema.Struct({
  type: Schema.Literal("image"),
  url: Schema.optional(Schema.String),
  data: Schema.optional(Schema.String),
  mediaType: Schema.optional(Schema.String)
})
/** @since 0.1.0 @category models */
export type ImagePart = typeof ImagePart.Type

/**
 * A call of a tool by the model; `input` is the parsed JSON arguments.
 *
 * @since 0.1.0
 * @category models
 */
export const ToolCallPart = Schema.Struct({
  type: Schema.Literal("tool-call"),
  id: Schema.String,
  name: Schema.String,
  input: Schema.Unknown
})
/** @since 0.1.0 @category models */
export type ToolCallPart = typeof ToolCallPart.Type

/**
 * The result of a tool call, answered back to the model.
 *
 * @since 0.1.0
 * @category models
 */
export const ToolResultPart = Schema.Struct({
  type: Schema.Literal("tool-result"),
  toolCallId: Schema.String,
  output: Schema.Unknown,
  isError: Schema.optional(Schema.Boolean)
})
/** @since 0.1.0 @category models */
export type ToolResultPart = typeof ToolResultPart.Type

/**
 * Any part of a message.
 *
 * @since 0.1.0
 * @category models
 */
export const Part = Schema.Union([TextPart, ImagePart, ToolCallPart, ToolResultPart])
/** @since 0.1.0 @category models */
export type Part = typeof Part.Type

/**
 * Who speaks a message.
 *
 * @since 0.1.0
 * @category models
 */
export const Role = Schema.Literals(["system", "user", "assistant", "tool"])
/** @since 0.1.0 @category models */
export type Role = typeof Role.Type

/**
 * One message of a conversation: a string, or a list of parts.
 *
 * @since 0.1.0
 * @category models
 */
export const Message = Schema.Struct({
  role: Role,
  content: Schema.Union([Schema.String, Schema.Array(Part)])
})
/** @since 0.1.0 @category models */
export type Message = typeof Message.Type

/**
 * A tool the model may call; `parameters` is a JSON Schema object.
 *
 * @since 0.1.0
 * @category models
 */
export const Tool = Schema.Struct({
  name: Schema.String,
  description: Schema.optional(Schema.String),
  parameters: Schema.Record(Schema.String, Schema.Unknown)
})
/** @since 0.1.0 @category models */
export type Tool = typeof Tool.Type

/**
 * Whether and which tool the model must call.
 *
 * @since 0.1.0
 * @category models
 */
export const ToolChoice = Schema.Union([
  Schema.Literals(["auto", "none", "required"]),
  Schema.Struct({ type: Schema.Literal("tool"), name: Schema.String })
])
/** @since 0.1.0 @category models */
export type ToolChoice = typeof ToolChoice.Type

/**
 * The shape of the answer: free text, any JSON object, or JSON matching a
 * JSON Schema.
 *
 * @since 0.1.0
 * @category models
 */
export const ResponseFormat = Schema.Union([
  Schema.Struct({ type: Schema.Literal("text") }),
  Schema.Struct({ type: Schema.Literal("json") }),
  Schema.Struct({
    type: Schema.Literal("json-schema"),
    name: Schema.String,
    schema: Schema.Record(Schema.String, Schema.Unknown),
    strict: Schema.optional(Schema.Boolean)
  })
])
/** @since 0.1.0 @category models */
export type ResponseFormat = typeof ResponseFormat.Type

/**
 * What combinators read about a request: routing by `task`, budgets and
 * caches by `tenant`, the ledger by `tags`, logs by `requestId`.
 *
 * @since 0.1.0
 * @category models
 */
export const Metadata = Schema.Struct({
  task: Schema.optional(Schema.String),
  tenant: Schema.optional(Schema.String),
  tags: Schema.optional(Schema.Array(Schema.String)),
  requestId: Schema.optional(Schema.String),
  /** Set by `PromptTemplate.render`: which template and version built the request (ledger, spans). */
  prompt: Schema.optional(Schema.Struct({ id: Schema.String, version: Schema.String }))
})
/** @since 0.1.0 @category models */
export type Metadata = typeof Metadata.Type

/**
 * What a model can do, as the catalog records it and a request may require.
 *
 * @since 0.1.0
 * @category models
 */
export const Capability = Schema.Literals(["tools", "vision", "jsonSchema", "prefill", "reasoning"])
/** @since 0.1.0 @category models */
export type Capability = typeof Capability.Type

/**
 * Hints a `Router` honours: a preferred candidate (by name), capabilities the
 * answering model must have, a price ceiling for this call and a latency
 * ceiling (observed).
 *
 * @since 0.1.0
 * @category models
 */
export const Routing = Schema.Struct({
  prefer: Schema.optional(Schema.String),
  require: Schema.optional(Schema.Array(Capability)),
  maxPriceUsd: Schema.optional(Schema.Number),
  maxLatencyMs: Schema.optional(Schema.Number)
})
/** @since 0.1.0 @category models */
export type Routing = typeof Routing.Type

/**
 * A request's total time bound: a `Duration`, or a number of milliseconds.
 *
 * @since 0.1.0
 * @category models
 */
export const DeadlineInput = Schema.Union([Schema.Duration, Schema.Number])

/**
 * A call to a model. `model` overrides the provider layer's default model;
 * `deadline` bounds the whole call, retries and fallbacks included; `cache:
 * false` bypasses a response cache.
 *
 * @since 0.1.0
 * @category models
 */
export const LlmRequest = Schema.Struct({
  messages: Schema.Array(Message),
  model: Schema.optional(Schema.String),
  system: Schema.optional(Schema.String),
  temperature: Schema.optional(Schema.Number),
  topP: Schema.optional(Schema.Number),
  maxTokens: Schema.optional(Schema.Number),
  stop: Schema.optional(Schema.Array(Schema.String)),
  seed: Schema.optional(Schema.Number),
  tools: Schema.optional(Schema.Array(Tool)),
  toolChoice: Schema.optional(ToolChoice),
  responseFormat: Schema.optional(ResponseFormat),
  metadata: Schema.optional(Metadata),
  routing: Schema.optional(Routing),
  cache: Schema.optional(Schema.Boolean),
  deadline: Schema.optional(DeadlineInput)
})
/** @since 0.1.0 @category models */
export type LlmRequest = typeof LlmRequest.Type

/**
 * The text of a message's content: a string as is, parts' text joined.
 *
 * @since 0.1.0
 * @category getters
 */
export const contentText = (content: Message["content"]): string => {
  if (typeof content === "string") return content
  let text = ""
  for (const part of content) if (part.type === "text") text += part.text
  return text
}

/**
 * The request's deadline as a `Duration`, if it has one.
 *
 * @since 0.1.0
 * @category getters
 */
export const deadlineOf = (request: LlmRequest): Duration.Duration | undefined =>
  request.deadline === undefined
    ? undefined
    : typeof request.deadline === "number"
    ? Duration.millis(request.deadline)
    : request.deadline

/**
 * Checks the rules of a well-formed request and returns the first broken one
 * as an `InvalidRequest` whose `field` is the path of the bad value, or
 * `undefined` when the request is good. Pure and allocation-free on the good
 * path, so every layer can afford it.
 *
 * @since 0.1.0
 * @category validation
 */
export const check = (
  request: LlmRequest,
  origin: { readonly provider: string; readonly model?: string | undefined }
): InvalidRequest | undefined => {
  const invalid = (field: string, message: string) =>
    new InvalidRequest({ ...origin, field, message: `${field}: ${message}` })
  if (!Array.isArray(request.messages)) return invalid("messages", "must be an array of messages")
  if (request.messages.length === 0 && (request.system === undefined || request.system.length === 0)) {
    return invalid("messages", "must hold at least one message")
  }
  let calls: Set<string> | undefined
  for (let i = 0; i < request.messages.length; i++) {
    const message = request.messages[i]!
    const at = `messages[${i}]`
    if (message.role !== "system" && message.role !== "user" && message.role !== "assistant" && message.role !== "tool") {
      return invalid(`${at}.role`, `must be "system", "user", "assistant" or "tool", got ${JSON.stringify(message.role)}`)
    }
    if (typeof message.content === "string") {
      if (message.role === "tool") return invalid(`${at}.content`, "a tool message must hold tool-result parts")
      continue
    }
    if (!Array.isArray(message.content)) return invalid(`${at}.content`, "must be a string or an array of parts")
    for (let j = 0; j < message.content.length; j++) {
      const part = message.content[j]!
      const partAt = `${at}.content[${j}]`
      switch (part.type) {
        case "text":
          if (typeof part.text !== "string") return invalid(`${partAt}.text`, "must be a string")
          break
        case "image":
          if (part.url === undefined && part.data === undefined) {
            return invalid(partAt, "an image needs a url or base64 data")
          }
          if (part.data !== undefined && part.mediaType === undefined) {
            return invalid(`${partAt}.mediaType`, "inline image data needs its media type")
          }
          break
        case "tool-call":
          if (message.role !== "assistant") return invalid(partAt, "only assistant messages may hold tool calls")
          if (typeof part.id !== "string" || part.id.length === 0) return invalid(`${partAt}.id`, "must be a non-empty id")
          if (typeof part.name !== "string" || part.name.length === 0) {
            return invalid(`${partAt}.name`, "must name the tool")
          }
          ;(calls ??= new Set()).add(part.id)
          break
        case "tool-result":
          if (calls === undefined || !calls.has(part.toolCallId)) {
            return invalid(
              `${partAt}.toolCallId`,
              `no earlier assistant tool call has id ${JSON.stringify(part.toolCallId)}`
            )
          }
          break
        default:
          return invalid(`${partAt}.type`, `unknown part type ${JSON.stringify((part as { type: unknown }).type)}`)
      }
    }
  }
  const { maxTokens, temperature, topP, seed } = request
  if (maxTokens !== undefined && (!Number.isInteger(maxTokens) || maxTokens <= 0)) {
    return invalid("maxTokens", `must be a positive integer, got ${maxTokens}`)
  }
  if (temperature !== undefined && !(temperature >= 0 && temperature <= 2)) {
    return invalid("temperature", `must be between 0 and 2, got ${temperature}`)
  }
  if (topP !== undefined && !(topP > 0 && topP <= 1)) {
    return invalid("topP", `must be greater than 0 and at most 1, got ${topP}`)
  }
  if (seed !== undefined && !Number.isInteger(seed)) return invalid("seed", `must be an integer, got ${seed}`)
  if (request.stop !== undefined) {
    for (let i = 0; i < request.stop.length; i++) {
      if (typeof request.stop[i] !== "string" || request.stop[i]!.length === 0) {
        return invalid(`stop[${i}]`, "must be a non-empty string")
      }
    }
  }
  if (request.tools !== undefined) {
    const names = new Set<string>()
    for (let i = 0; i < request.tools.length; i++) {
      const tool = request.tools[i]!
      if (typeof tool.name !== "string" || !/^[a-zA-Z0-9_-]{1,64}$/.test(tool.name)) {
        return invalid(`tools[${i}].name`, "must be 1-64 letters, digits, '_' or '-'")
      }
      if (names.has(tool.name)) return invalid(`tools[${i}].name`, `duplicate tool name ${tool.name}`)
      names.add(tool.name)
    }
  }
  const choice = request.toolChoice
  if (choice !== undefined && typeof choice === "object") {
    if (!request.tools?.some((tool) => tool.name === choice.name)) {
      return invalid("toolChoice.name", `no tool named ${JSON.stringify(choice.name)} in tools`)
    }
  } else if (choice === "required" && (request.tools === undefined || request.tools.length === 0)) {
    return invalid("toolChoice", `"required" needs at least one tool`)
  }
  if (request.deadline !== undefined) {
    const millis = Duration.toMillis(deadlineOf(request)!)
    if (!(millis > 0)) return invalid("deadline", "must be a positive duration")
  }
  return undefined
}

/**
 * {@link check} as an effect: succeeds with the request, or fails with
 * `InvalidRequest` naming the bad field.
 *
 * @since 0.1.0
 * @category validation
 */
export const validate = (
  request: LlmRequest,
  origin: { readonly provider: string; readonly model?: string | undefined }
): Effect.Effect<LlmRequest, InvalidRequest> => {
  const problem = check(request, origin)
  return problem === undefined ? Effect.succeed(request) : Effect.fail(problem)
}

/**
 * Decodes untrusted input (JSON from a queue, a config file) into a request,
 * then {@link validate}s it.
 *
 * @since 0.1.0
 * @category validation
 */
export const decode = (
  input: unknown,
  origin: { readonly provider: string; readonly model?: string | undefined } = { provider: "switchboard" }
): Effect.Effect<LlmRequest, InvalidRequest> =>
  Schema.decodeUnknownEffect(LlmRequest)(input).pipe(
    Effect.mapError((error) => new InvalidRequest({ ...origin, message: `request does not decode: ${error.message}` })),
    Effect.flatMap((request) => validate(request, origin))
  )

/**
 * Request fields a model layer fills in when a request leaves them out
 * (`model(name, defaults)` in every provider package).
 *
 * @since 0.1.0
 * @category models
 */
export type Defaults = Omit<Partial<LlmRequest>, "messages">

/**
 * Returns a function that fills the fields a request leaves out from
 * `defaults`; a request's own values always win, and a request needing
 * nothing filled is returned as is.
 *
 * @since 0.1.0
 * @category combinators
 */
export const withDefaults = (defaults: Defaults | undefined): (request: LlmRequest) => LlmRequest => {
  const entries = defaults === undefined
    ? []
    : Object.entries(defaults).filter(([key, value]) => key !== "messages" && value !== undefined)
  if (entries.length === 0) return (request) => request
  return (request) => {
    let merged: Record<string, unknown> | undefined
    for (const [key, value] of entries) {
      if ((request as Record<string, unknown>)[key] === undefined) {
        merged ??= { ...request }
        merged[key] = value
      }
    }
    return (merged ?? request) as LlmRequest
  }
}
