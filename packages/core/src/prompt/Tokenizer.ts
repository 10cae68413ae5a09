/**
 * Token counts of text and whole requests, for budgets, token rate limits
 * and context fitting.
 *
 * OpenAI-family models are counted exactly with the BPE of `gpt-tokenizer`
 * (`o200k_base` for gpt-4o, gpt-4.1, gpt-4.5, gpt-5 and the o-series,
 * `cl100k_base` for gpt-4 and gpt-3.5). Every other model gets a declared
 * estimate (`estimated: true`): the `o200k_base` count × 1.2, deliberately on
 * the high side, because budgets and limits must not under-reserve.
 *
 * A request is counted the way OpenAI bills a chat: 3 tokens of framing per
 * message plus its role and content, 3 for the reply's priming, plus the
 * system prompt and the tool definitions (their JSON, plus 8 tokens per
 * tool). Tools and images make even an OpenAI count an estimate, since the
 * providers do not document those encodings.
 *
 * `Tokenizer` is a `Context.Reference`: it works with nothing provided. The
 * encodings are loaded once, on first use. Counts are remembered per request
 * object and per text (up to about a million characters of text per
 * encoding, oldest forgotten first): chats resend their system prompt, tools
 * and history on every turn, so a count is mostly lookups, and only new text
 * goes through the BPE.
 *
 * @since 0.1.0
 */
import { Context, Effect, Layer } from "effect"
import type { LlmRequest, Message } from "../LlmRequest.ts"

/**
 * A token count; `estimated` is true when it is not the model's own
 * tokenizer's exact count.
 *
 * @since 0.1.0
 * @category models
 */
export interface Count {
  readonly tokens: number
  readonly estimated: boolean
}

/**
 * The model a count is for.
 *
 * @since 0.1.0
 * @category models
 */
export interface Target {
  readonly provider: string
  readonly model: string
}

/**
 * The BPE encodings used for exact counts.
 *
 * @since 0.1.0
 * @category models
 */
export type Encoding = "o200k_base" | "cl100k_base"

/**
 * The tokenizer service.
 *
 * @since 0.1.0
 * @category models
 */
export interface TokenizerService {
  /** Counts a piece of text for a model. */
  readonly countText: (text: string, target: Target) => Effect.Effect<Count>
  /** Counts everything a request sends: messages, system prompt, tools and the chat framing. */
  readonly countRequest: (request: LlmRequest, target: Target) => Effect.Effect<Count>
}

/**
 * Per-message framing tokens of the chat format (`<|im_start|>role<|im_sep|>…<|im_end|>`).
 *
 * @since 0.1.0
 * @category constants
 */
export const tokensPerMessage = 3

/**
 * Tokens that prime the reply (`<|im_start|>assistant<|im_sep|>`).
 *
 * @since 0.1.0
 * @category constants
 */
export const replyPriming = 3

/**
 * The factor applied to the `o200k_base` count for models without an exact
 * tokenizer.
 *
 * @since 0.1.0
 * @category constants
 */
export const estimateFactor = 1.2

/** Tokens charged per image when counting locally (a 1024×1024 high-detail image on OpenAI). */
const imageTokens = 765
/** Framing per tool definition beyond its JSON. */
const tokensPerTool = 8

const o200kModel = /^(?:ft:)?(?:gpt-4o|gpt-4\.1|gpt-4\.5|gpt-5|chatgpt-4o|o1|o3|o4|codex-mini|gpt-realtime|gpt-audio)/
const cl100kModel = /^(?:ft:)?(?:gpt-4|gpt-3\.5|gpt-35|text-embedding-3|text-embedding-ada-002)/

/**
 * The exact encoding of an OpenAI-family model, or `undefined` when the model
 * has none here (its counts are estimates). A `vendor/` prefix (OpenRouter,
 * Together) is ignored; `gpt-oss` uses a different encoding and is estimated.
 *
 * @since 0.1.0
 * @category getters
 */
export const encodingFor = (target: Target): Encoding | undefined => {
  const known = encodings.get(target.model)
  if (known !== undefined) return known === "none" ? undefined : known
  const encoding = encodingOfModel(target.model)
  if (encodings.size < rememberedModels) encodings.set(target.model, encoding ?? "none")
  return encoding
}

const encodingOfModel = (name: string): Encoding | undefined => {
  const model = name.startsWith("openai/") ? name.slice(7) : name
  if (model.includes("/")) return undefined
  if (o200kModel.test(model)) return "o200k_base"
  if (cl100kModel.test(model)) return "cl100k_base"
  return undefined
}

/** Model names whose encoding is remembered (a deployment has a handful; the cap bounds a caller that sends many). */
const rememberedModels = 1024
const encodings = new Map<string, Encoding | "none">()

interface Bpe {
  readonly countTokens: (text: string, options?: { readonly disallowedSpecial?: Set<string> }) => number
}

const loaded: { o200k_base?: Bpe; cl100k_base?: Bpe } = {}
const loading: { o200k_base?: Promise<Bpe>; cl100k_base?: Promise<Bpe> } = {}

const load = (encoding: Encoding): Promise<Bpe> =>
  loading[encoding] ??= (encoding === "o200k_base"
    ? import("gpt-tokenizer/encoding/o200k_base")
    : import("gpt-tokenizer/encoding/cl100k_base")).then((module) => {
      const bpe: Bpe = { countTokens: module.countTokens as Bpe["countTokens"] }
      loaded[encoding] = bpe
      return bpe
    })

const bpeOf = (encoding: Encoding): Effect.Effect<Bpe> => {
  const bpe = loaded[encoding]
  return bpe !== undefined ? Effect.succeed(bpe) : Effect.promise(() => load(encoding))
}

const noSpecial = { disallowedSpecial: new Set<string>() }

// Special-token spellings in user text ("<|endoftext|>") are counted as plain text, never rejected.
const countWith = (bpe: Bpe, text: string): number => {
  if (text.length === 0) return 0
  try {
    return bpe.countTokens(text)
  } catch {
    return bpe.countTokens(text, noSpecial)
  }
}

const stringify = (value: unknown): string => typeof value === "string" ? value : JSON.stringify(value) ?? ""

/** Counts one piece of text. */
type CountText = (text: string) => number

/** Characters of text whose counts one encoding remembers (about 2 MB of strings). */
const rememberedChars = 1 << 20
/** Texts whose counts one encoding remembers. */
const rememberedTexts = 1 << 13
/**
 * Shorter texts are counted every time rather than remembered: a remembered
 * text outlives the young GC generation, which costs more than counting a
 * short text again (~0.03 µs a character), so only a text worth remembering
 * — a system prompt, a tool list, a turn of history — is kept.
 */
const shortestRemembered = 256
/** Longer texts are counted every time rather than remembered. */
const longestRemembered = 1 << 15

/**
 * `bpe`'s count of a text, remembered by content: chats resend the same system
 * prompt, tool definitions and history on every turn, so most long texts a
 * budget or rate limit counts have been counted before.
 *
 * Two generations of about `rememberedChars / 2` characters (at most
 * `rememberedTexts / 2` texts) each: when the
 * young one fills up it becomes the old one and the previous old one is
 * dropped whole, and a text found in the old generation moves back to the
 * young one. Every step is O(1) — unlike evicting one by one from the front
 * of a `Map`, which V8 makes slower with every deletion.
 */
const remembering = (bpe: Bpe): CountText => {
  let young = new Map<string, number>()
  let old = new Map<string, number>()
  let youngChars = 0
  const remember = (text: string, tokens: number) => {
    if (youngChars + text.length > rememberedChars / 2 || young.size >= rememberedTexts / 2) {
      old = young
      young = new Map()
      youngChars = 0
    }
    young.set(text, tokens)
    youngChars += text.length
  }
  return (text) => {
    if (text.length < shortestRemembered || text.length > longestRemembered) return countWith(bpe, text)
    const known = young.get(text)
    if (known !== undefined) return known
    const aged = old.get(text)
    if (aged !== undefined) {
      remember(text, aged)
      return aged
    }
    const tokens = countWith(bpe, text)
    remember(text, tokens)
    return tokens
  }
}

const contentTokens = (count: CountText, content: Message["content"]): { tokens: number; approximate: boolean } => {
  if (typeof content === "string") return { tokens: count(content), approximate: false }
  let tokens = 0
  let approximate = false
  for (const part of content) {
    switch (part.type) {
      case "text":
        tokens += count(part.text)
        break
      case "image":
        tokens += imageTokens
        approximate = true
        break
      case "tool-call":
        tokens += count(part.name) + count(stringify(part.input)) + tokensPerMessage
        approximate = true
        break
      case "tool-result":
        tokens += count(stringify(part.output)) + tokensPerMessage
        approximate = true
        break
    }
  }
  return { tokens, approximate }
}

const countRequestWith = (count: CountText, request: LlmRequest): { tokens: number; approximate: boolean } => {
  let tokens = replyPriming
  let approximate = false
  if (request.system !== undefined && request.system.length > 0) {
    tokens += tokensPerMessage + 1 + count(request.system)
  }
  for (const message of request.messages) {
    if (typeof message.content === "string") {
      // Every role name ("system", "user", "assistant", "tool") is one token in both encodings.
      tokens += tokensPerMessage + 1 + count(message.content)
      continue
    }
    const content = contentTokens(count, message.content)
    tokens += tokensPerMessage + 1 + content.tokens
    if (content.approximate) approximate = true
  }
  if (request.tools !== undefined && request.tools.length > 0) {
    approximate = true
    for (const tool of request.tools) {
      tokens += tokensPerTool + count(tool.name) + count(tool.description ?? "") +
        count(JSON.stringify(tool.parameters))
    }
  }
  if (request.responseFormat?.type === "json-schema") {
    approximate = true
    tokens += count(JSON.stringify(request.responseFormat.schema))
  }
  return { tokens, approximate }
}

/** A request's count in one encoding, before it is marked exact or turned into an estimate. */
interface Raw {
  readonly tokens: number
  readonly approximate: boolean
}

/** A raw count as a target's count: exact in its own encoding, else the `o200k_base` count × {@link estimateFactor}. */
const countOf = (raw: Raw, exact: Encoding | undefined): Count =>
  exact === undefined
    ? { tokens: Math.ceil(raw.tokens * estimateFactor), estimated: true }
    : { tokens: raw.tokens, estimated: raw.approximate }

/** How many of the latest request objects keep their counts. */
const recentSlots = 16

/**
 * The default tokenizer: exact BPE counts for the OpenAI family, estimates
 * elsewhere.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (): TokenizerService => {
  const counters: { o200k_base?: CountText; cl100k_base?: CountText } = {}
  const counterOf = (encoding: Encoding, bpe: Bpe): CountText => counters[encoding] ??= remembering(bpe)
  const countText = (text: string, target: Target): Effect.Effect<Count> => {
    const encoding = encodingFor(target)
    return Effect.map(bpeOf(encoding ?? "o200k_base"), (bpe) => {
      const tokens = counterOf(encoding ?? "o200k_base", bpe)(text)
      return encoding === undefined
        ? { tokens: Math.ceil(tokens * estimateFactor), estimated: true }
        : { tokens, estimated: false }
    })
  }
  // Requests are immutable, so the counts of the last few request objects are
  // kept (by identity, no WeakMap for the GC to trace): a budget and a rate
  // limit on one call count it once, and an estimate for another family
  // reuses the o200k_base count of the same request.
  const recentRequests: Array<LlmRequest | undefined> = new Array(recentSlots).fill(undefined)
  const recentCounts: Array<{ o200k_base?: Raw; cl100k_base?: Raw }> = new Array(recentSlots)
  let nextSlot = 0
  const recentOf = (request: LlmRequest): { o200k_base?: Raw; cl100k_base?: Raw } | undefined => {
    for (let i = 0; i < recentSlots; i++) if (recentRequests[i] === request) return recentCounts[i]
    return undefined
  }
  const rawOf = (request: LlmRequest, encoding: Encoding, bpe: Bpe): Raw => {
    const raw = countRequestWith(counterOf(encoding, bpe), request)
    const known = recentOf(request)
    if (known !== undefined) known[encoding] = raw
    else {
      recentRequests[nextSlot] = request
      recentCounts[nextSlot] = { [encoding]: raw }
      nextSlot = (nextSlot + 1) % recentSlots
    }
    return raw
  }
  const countRequest = (request: LlmRequest, target: Target): Effect.Effect<Count> => {
    const exact = encodingFor(target)
    const encoding = exact ?? "o200k_base"
    const known = recentOf(request)?.[encoding]
    if (known !== undefined) return Effect.succeed(countOf(known, exact))
    const bpe = loaded[encoding]
    if (bpe !== undefined) return Effect.succeed(countOf(rawOf(request, encoding, bpe), exact))
    return Effect.map(bpeOf(encoding), (bpe) => countOf(rawOf(request, encoding, bpe), exact))
  }
  return { countText, countRequest }
}

/**
 * A cheap tokenizer with no BPE at all: about one token per 3 characters,
 * every count marked estimated. Useful where loading the encodings is not
 * worth it (edge runtimes, tests).
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeApproximate = (charsPerToken = 3): TokenizerService => {
  const ofText = (text: string) => Math.ceil(text.length / charsPerToken)
  return {
    countText: (text) => Effect.succeed({ tokens: ofText(text), estimated: true }),
    countRequest: (request) => Effect.succeed({ tokens: countRequestWith(ofText, request).tokens, estimated: true })
  }
}

/**
 * The tokenizer in context: {@link make}'s unless a layer replaces it.
 *
 * @since 0.1.0
 * @category services
 */
export const Tokenizer: Context.Reference<TokenizerService> = Context.Reference<TokenizerService>(
  "@switchboard/core/Tokenizer",
  { defaultValue: make }
)

/**
 * An upper bound of a text's token count in any byte-level encoding, without
 * the BPE: its UTF-8 length (every token is at least one byte). Code units
 * from U+0800 up, surrogates included, are taken as 3 bytes, so a lone
 * surrogate (sent as U+FFFD) is covered too.
 */
const utf8Bound = (text: string): number => {
  let bytes = text.length
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i)
    if (unit >= 0x80) bytes += unit >= 0x800 ? 2 : 1
  }
  return bytes
}

/**
 * An upper bound of what {@link make}'s tokenizer counts for `request`,
 * without running the BPE (so without loading it): every text is taken at
 * its UTF-8 length, a token being at least one byte in `o200k_base`,
 * `cl100k_base` and every byte-level BPE the providers use; framing, images
 * and tools as {@link countRequest} counts them; × {@link estimateFactor}
 * where the count would be an estimate. Always marked `estimated`. A budget
 * with `count: "bound"` reserves this, and counts only when it does not fit.
 *
 * @example
 * ```ts
 * import { Tokenizer } from "@switchboard/core"
 *
 * const bound = Tokenizer.boundRequest({ messages: [{ role: "user", content: "hello world" }] }, { provider: "openai", model: "gpt-4o" })
 * // { tokens: 18, estimated: true }: 11 bytes + 4 of framing + 3 of reply priming
 * ```
 *
 * @since 0.1.0
 * @category utils
 */
export const boundRequest = (request: LlmRequest, target: Target): Count => ({
  tokens: countOf(countRequestWith(utf8Bound, request), encodingFor(target)).tokens,
  estimated: true
})

/**
 * Counts a piece of text with the tokenizer in context.
 *
 * @since 0.1.0
 * @category accessors
 */
export const countText = (text: string, target: Target): Effect.Effect<Count> =>
  Effect.flatMap(Tokenizer, (tokenizer) => tokenizer.countText(text, target))

/**
 * Counts a whole request with the tokenizer in context.
 *
 * @since 0.1.0
 * @category accessors
 */
export const countRequest = (request: LlmRequest, target: Target): Effect.Effect<Count> =>
  Effect.flatMap(Tokenizer, (tokenizer) => tokenizer.countRequest(request, target))

/**
 * Replaces the tokenizer in context (for example with {@link makeApproximate},
 * or a provider's own counting endpoint).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (tokenizer: TokenizerService): Layer.Layer<never> => Layer.succeed(Tokenizer, tokenizer)

/**
 * Loads the BPE encodings now rather than on the first count (they take
 * ~150 ms to load), e.g. at startup.
 *
 * @since 0.1.0
 * @category constructors
 */
export const preload: Effect.Effect<void> = Effect.asVoid(
  Effect.promise(() => Promise.all([load("o200k_base"), load("cl100k_base")]))
)
