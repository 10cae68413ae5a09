/**
 * Deterministic completions: the same request gives the same reply text, tool
 * call and usage on every run.
 *
 * Tool rule: when the request offers tools, `tool_choice` is not "none", and
 * the last message is not a tool result, the reply calls the named tool (or the
 * first one) with arguments built from the required properties of its JSON
 * schema. Otherwise the reply is text.
 *
 * @internal
 */
import type { Model } from "../Config.ts"
import { countTokens, promptTokens, replyPieces, words } from "../Tokens.ts"
import type { Completion, Finish, SimRequest, ToolCall } from "./protocol.ts"
import { BoundedCache, fnv1a, idFrom, isRecord } from "./util.ts"

/** Prompts at least this long are "cached" when their prefix repeats. */
export const CACHE_MIN_TOKENS = 1024

interface Base {
  readonly hash: number
  readonly promptTokens: number
  readonly prefixKey: number
  readonly prefixTokens: number
  readonly pieces: ReadonlyArray<string>
  readonly tool: ToolCall | undefined
}

const baseCache = new BoundedCache<string, Base>(5_000)

/** Hash key and prompt tokens of a request; cached so repeated requests cost one Map lookup. */
export const analyse = (req: SimRequest): Base => {
  const key = req.model + "\u0000" + req.texts.join("\u0001") + "\u0002" + req.toolsJson + "\u0003" +
    req.toolChoice._tag + (req.toolChoice._tag === "named" ? req.toolChoice.name : "") + (req.lastIsToolResult ? "1" : "0") +
    (req.cachePrefix === undefined ? "" : `\u0004${req.cachePrefix.map((t) => t.length).join(",")}`)
  const hit = baseCache.get(key)
  if (hit !== undefined) return hit
  const hash = fnv1a(key)
  // Automatic caching covers all but the last text; explicit caching only what the last breakpoint marks.
  const prefix = req.cachePrefix === undefined ? req.texts.slice(0, -1) : req.cachePrefix
  const base: Base = {
    hash,
    promptTokens: promptTokens(req.texts, req.toolsJson),
    prefixKey: fnv1a(req.model + "\u0000" + prefix.join("\u0001") + "\u0002" + req.toolsJson),
    prefixTokens: prefix.length === 0 ? 0 : promptTokens(prefix, req.toolsJson) - 3,
    pieces: replyPieces(hash),
    tool: pickTool(req, hash)
  }
  baseCache.set(key, base)
  return base
}

const pickTool = (req: SimRequest, hash: number): ToolCall | undefined => {
  if (req.tools.length === 0 || req.toolChoice._tag === "none" || req.lastIsToolResult) return undefined
  const choice = req.toolChoice
  const tool = choice._tag === "named" ? req.tools.find((t) => t.name === choice.name) ?? req.tools[0]! : req.tools[0]!
  const input = sample(tool.schema, hash, 0)
  return { id: idFrom(hash, 24), name: tool.name, args: JSON.stringify(input), input }
}

const sample = (schema: unknown, seed: number, depth: number): unknown => {
  if (!isRecord(schema) || depth > 6) return {}
  if (Array.isArray(schema.enum) && schema.enum.length > 0) return schema.enum[0]
  if (schema.const !== undefined) return schema.const
  const type = Array.isArray(schema.type) ? schema.type[0] : schema.type
  switch (typeof type === "string" ? type.toLowerCase() : "object") {
    case "string":
      return words[seed % words.length]
    case "number":
    case "integer":
      return 42
    case "boolean":
      return true
    case "array":
      return schema.items !== undefined ? [sample(schema.items, seed + 1, depth + 1)] : []
    case "null":
      return null
    default: {
      const out: Record<string, unknown> = {}
      const props = isRecord(schema.properties) ? schema.properties : {}
      const required = Array.isArray(schema.required) ? schema.required : []
      let i = 0
      for (const name of required) {
        if (typeof name === "string") out[name] = sample(props[name], seed + ++i, depth + 1)
      }
      return out
    }
  }
}

export interface GenerateState {
  /** Prefixes seen before (per provider), for simulated prompt caching. */
  readonly prefixes: Set<number>
  nextId: number
}

/** Builds the completion for a request against a model. */
export const generate = (
  req: SimRequest,
  base: Base,
  model: Model,
  state: GenerateState,
  contentFilter: boolean
): Completion => {
  const limit = Math.min(req.maxTokens ?? model.maxOutput, model.maxOutput)
  let pieces = base.pieces
  let finish: Finish = "stop"
  let tool = base.tool
  if (contentFilter) {
    pieces = pieces.slice(0, Math.min(limit, Math.max(1, pieces.length >> 1)))
    finish = "filter"
    tool = undefined
  } else if (tool !== undefined) {
    pieces = []
    finish = "tool"
  } else if (pieces.length > limit) {
    pieces = pieces.slice(0, limit)
    finish = "length"
  }
  let cachedTokens = 0
  let cacheWriteTokens = 0
  if (base.prefixTokens >= CACHE_MIN_TOKENS) {
    if (state.prefixes.has(base.prefixKey)) cachedTokens = base.prefixTokens
    else {
      state.prefixes.add(base.prefixKey)
      cacheWriteTokens = base.prefixTokens
    }
  }
  const outputTokens = tool !== undefined ? countTokens(tool.name) + countTokens(tool.args) : pieces.length
  const n = state.nextId++
  return {
    model: req.model,
    hash: base.hash,
    pieces,
    text: pieces.join(""),
    tool,
    finish,
    promptTokens: base.promptTokens,
    outputTokens,
    cachedTokens,
    cacheWriteTokens,
    requestId: idFrom(base.hash ^ n, 12) + n.toString(36),
    created: Math.floor(Date.now() / 1000)
  }
}
