/**
 * Canonical encoding of requests, for cache keys: the same request written
 * with its keys in any order, or with `undefined` fields left in, encodes to
 * the same string. Fields that do not change the answer (`deadline`,
 * `cache`, `metadata.requestId`, `metadata.tags`, `metadata.task`) are left
 * out; `metadata.tenant` is kept so tenants never share entries.
 *
 * @internal
 */
import { hash } from "node:crypto"
import type { LlmRequest, Message, Part } from "../LlmRequest.ts"

const encodeValue = (value: unknown, out: Array<string>): void => {
  if (value === null || typeof value !== "object") {
    // JSON.stringify gives one spelling per primitive (NaN and ±Infinity become null, as on the wire).
    out.push(value === undefined ? "null" : JSON.stringify(value))
    return
  }
  if (Array.isArray(value)) {
    out.push("[")
    for (let i = 0; i < value.length; i++) {
      if (i > 0) out.push(",")
      encodeValue(value[i], out)
    }
    out.push("]")
    return
  }
  const record = value as Record<string, unknown>
  const keys = Object.keys(record).sort()
  out.push("{")
  let first = true
  for (const key of keys) {
    const field = record[key]
    if (field === undefined) continue
    if (!first) out.push(",")
    first = false
    out.push(JSON.stringify(key), ":")
    encodeValue(field, out)
  }
  out.push("}")
}

/**
 * Any JSON-like value as a string that does not depend on key order;
 * `undefined` fields are dropped.
 *
 * @internal
 */
export const canonicalJson = (value: unknown): string => {
  const out: Array<string> = []
  encodeValue(value, out)
  return out.join("")
}

const str = JSON.stringify

const encodePart = (part: Part): string => {
  switch (part.type) {
    case "text":
      return `{"t":${str(part.text)}}`
    case "image":
      return `{"i":${str(part.url ?? null)},"d":${str(part.data ?? null)},"m":${str(part.mediaType ?? null)}}`
    case "tool-call":
      return `{"c":${str(part.id)},"n":${str(part.name)},"in":${canonicalJson(part.input)}}`
    case "tool-result":
      return `{"r":${str(part.toolCallId)},"out":${canonicalJson(part.output)},"e":${part.isError === true}}`
    default:
      return canonicalJson(part)
  }
}

// The four roles, already encoded as the opening of a message.
const roleOpen: Record<string, string> = {
  system: `[${str("system")},`,
  user: `[${str("user")},`,
  assistant: `[${str("assistant")},`,
  tool: `[${str("tool")},`
}

const encodeMessages = (messages: ReadonlyArray<Message>): string => {
  let out = "["
  for (let i = 0; i < messages.length; i++) {
    const message = messages[i]!
    if (i > 0) out += ","
    out += roleOpen[message.role] ?? `[${str(message.role)},`
    const content = message.content
    if (typeof content === "string") {
      out += str(content)
    } else {
      out += "["
      for (let j = 0; j < content.length; j++) {
        if (j > 0) out += ","
        out += encodePart(content[j]!)
      }
      out += "]"
    }
    out += "]"
  }
  return out + "]"
}

// A finite number spells the same through `String` as through `JSON.stringify`, at a fraction of the cost.
const field = (value: unknown): string =>
  typeof value === "number" && Number.isFinite(value) ? String(value) : typeof value === "object" ? canonicalJson(value) : str(value)

/**
 * The parts of a request that decide its answer, canonically encoded. The
 * shape is fixed (fields in one order, message parts by position), so only
 * free-form JSON — tool schemas, tool inputs and outputs, response schemas —
 * goes through the key-sorting encoder.
 *
 * @internal
 */
export const canonicalRequest = (request: LlmRequest, namespace = ""): string => {
  let out = (namespace === "" ? "\"\"" : str(namespace)) + encodeMessages(request.messages)
  // each present field as `,name:value`, in this fixed order
  if (request.model !== undefined) out += ",model:" + field(request.model)
  if (request.system !== undefined) out += ",system:" + field(request.system)
  if (request.temperature !== undefined) out += ",temperature:" + field(request.temperature)
  if (request.topP !== undefined) out += ",topP:" + field(request.topP)
  if (request.maxTokens !== undefined) out += ",maxTokens:" + field(request.maxTokens)
  if (request.stop !== undefined) out += ",stop:" + field(request.stop)
  if (request.seed !== undefined) out += ",seed:" + field(request.seed)
  if (request.tools !== undefined) out += ",tools:" + field(request.tools)
  if (request.toolChoice !== undefined) out += ",toolChoice:" + field(request.toolChoice)
  if (request.responseFormat !== undefined) out += ",responseFormat:" + field(request.responseFormat)
  const tenant = request.metadata?.tenant
  if (tenant !== undefined) out += ",tenant:" + field(tenant)
  return out
}

/**
 * A 256-bit digest of the canonical request, base64url (43 characters).
 *
 * @internal
 */
export const requestKey = (request: LlmRequest, namespace = ""): string =>
  digestOf(canonicalRequest(request, namespace))

/**
 * The digest {@link requestKey} makes of a canonical encoding.
 *
 * @internal
 */
export const digestOf = (canonical: string): string => hash("sha256", canonical, "base64url")

/** Plain in-memory keys up to this length are kept as they are: no digest on the hot path. */
const longestPlainKey = 512

/** A number as the in-memory key spells it: `JSON.stringify` writes every non-finite one as `null`. */
const finite = (value: number | undefined): number | string | undefined =>
  value === undefined || Number.isFinite(value) ? value : String(value)

/**
 * A key for an in-memory map of requests, shared only by requests that
 * {@link canonicalRequest} encodes alike (the same fields decide, in any key
 * order; non-finite numbers stay apart): one `JSON.stringify` of the deciding
 * fields by position, so the
 * string is built flat in one pass — a `Map` lookup under a key made of many
 * concatenations first copies it flat, which cost a cache hit more than the
 * rest of the lookup. A key over 512 characters is replaced by its SHA-256
 * (43 characters that never start with `[`), so a long prompt is not kept
 * twice. Never shown: events name a request by its {@link requestKey}.
 *
 * @internal
 */
export const memoryKey = (request: LlmRequest): string => {
  const messages: Array<unknown> = []
  for (const message of request.messages) {
    const content = message.content
    // A string content stays a JSON string; parts become a JSON array (so neither can pass for the other).
    messages.push(message.role, typeof content === "string" ? content : content.map(encodePart))
  }
  const plain = JSON.stringify([
    messages,
    request.model,
    request.system,
    finite(request.temperature),
    finite(request.topP),
    finite(request.maxTokens),
    request.stop === undefined ? undefined : field(request.stop),
    finite(request.seed),
    request.tools === undefined ? undefined : field(request.tools),
    request.toolChoice === undefined ? undefined : field(request.toolChoice),
    request.responseFormat === undefined ? undefined : field(request.responseFormat),
    request.metadata?.tenant
  ])
  return plain.length <= longestPlainKey ? plain : digestOf(plain)
}
