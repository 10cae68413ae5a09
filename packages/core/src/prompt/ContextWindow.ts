/**
 * Fitting a conversation to a model's context window before it is sent, and
 * pruning retrieved context to a token budget.
 *
 * {@link fit} counts the request with the `Tokenizer` (exact for OpenAI
 * models, the declared estimate elsewhere) against `maxInputTokens`, or the
 * model's window from the `Pricing` catalog minus `reserve` tokens kept for
 * the answer. When the request is too long, whole turns are dropped by a
 * strategy:
 *
 * - `"start"` drops the oldest turns (system messages are always kept),
 * - `"end"` drops the newest turns,
 * - `"middle"` drops turns from the middle, keeping the first and last,
 * - `"smart"` keeps system messages, the first user turn and as many of the
 *   most recent turns as fit.
 *
 * An assistant message that calls tools and the messages answering those
 * calls form one turn, so a tool call is never separated from its result.
 * When even the minimum a strategy keeps does not fit, {@link fit} fails
 * with `ContextLengthExceeded { limit, requested }` — before any call.
 *
 * {@link layer} fits every request on its way down a stack; {@link prune}
 * picks retrieved items (RAG chunks, memories) by relevance, recency or both
 * within a token budget.
 *
 * @since 0.1.0
 */
import { Effect, Schema, Stream } from "effect"
import { LLM, transform } from "../LLM.ts"
import { ContextLengthExceeded } from "../LlmError.ts"
import type { LlmRequest, Message } from "../LlmRequest.ts"
import { Pricing } from "../money/Pricing.ts"
import * as SwitchboardConfigError from "../SwitchboardConfigError.ts"
import * as Tokenizer from "./Tokenizer.ts"

/**
 * Which turns {@link fit} drops first.
 *
 * @since 0.1.0
 * @category models
 */
export const Strategy = Schema.Literals(["start", "end", "middle", "smart"])
/** @since 0.1.0 @category models */
export type Strategy = typeof Strategy.Type

const nonNegativeInt = Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))
const positiveInt = Schema.Int.check(Schema.isGreaterThanOrEqualTo(1))

/**
 * The options of {@link fit} and {@link layer}:
 *
 * - `strategy`: which turns to drop first,
 * - `maxInputTokens`: the input budget (default: the catalog's context window
 *   of the request's model, minus `reserve`),
 * - `reserve`: tokens kept free for the answer (default: the request's
 *   `maxTokens` when the window comes from the catalog, else 0),
 * - `provider` / `model`: the catalog and tokenizer key when the request
 *   names no model (a layer's default model).
 *
 * @since 0.1.0
 * @category models
 */
export const Options = Schema.Struct({
  strategy: Strategy,
  maxInputTokens: Schema.optional(positiveInt),
  reserve: Schema.optional(nonNegativeInt),
  provider: Schema.optional(Schema.String),
  model: Schema.optional(Schema.String)
})
/** @since 0.1.0 @category models */
export type Options = typeof Options.Type

/** A run of messages that must be kept or dropped together. */
interface Turn {
  readonly messages: ReadonlyArray<Message>
  readonly system: boolean
  readonly user: boolean
}

const toolCallIds = (message: Message): ReadonlyArray<string> =>
  typeof message.content === "string"
    ? []
    : message.content.flatMap((part) => part.type === "tool-call" ? [part.id] : [])

const answers = (message: Message, pending: Set<string>): boolean =>
  typeof message.content !== "string" &&
  message.content.some((part) => part.type === "tool-result" && pending.has(part.toolCallId))

/**
 * Splits messages into turns: each message alone, except that an assistant
 * message with tool calls takes along every following message that answers
 * one of its calls.
 *
 * @since 0.1.0
 * @category getters
 */
export const turns = (messages: ReadonlyArray<Message>): ReadonlyArray<ReadonlyArray<Message>> =>
  turnsOf(messages).map((turn) => turn.messages)

const turnsOf = (messages: ReadonlyArray<Message>): ReadonlyArray<Turn> => {
  const out: Array<Turn> = []
  for (let i = 0; i < messages.length; i++) {
    const message = messages[i]!
    const group = [message]
    const pending = new Set(toolCallIds(message))
    while (pending.size > 0 && i + 1 < messages.length && answers(messages[i + 1]!, pending)) {
      group.push(messages[++i]!)
    }
    out.push({ messages: group, system: message.role === "system", user: message.role === "user" })
  }
  return out
}

/** The order in which a strategy drops the droppable turns (indices into `list`), and which are pinned. */
const plan = (list: ReadonlyArray<Turn>, strategy: Strategy): { readonly pinned: Set<number>; readonly order: Array<number> } => {
  const pinned = new Set<number>()
  const others: Array<number> = []
  list.forEach((turn, i) => (turn.system ? pinned.add(i) : others.push(i)))
  if (others.length === 0) return { pinned, order: [] }
  const first = others[0]!
  const last = others[others.length - 1]!
  switch (strategy) {
    case "start":
      pinned.add(last)
      return { pinned, order: others.slice(0, -1) }
    case "end":
      pinned.add(first)
      return { pinned, order: others.slice(1).reverse() }
    case "middle": {
      pinned.add(first)
      pinned.add(last)
      const inner = others.slice(1, -1)
      // From the centre outwards, alternating towards the older and newer side.
      const order: Array<number> = []
      let lo = Math.floor((inner.length - 1) / 2)
      let hi = lo + 1
      while (lo >= 0 || hi < inner.length) {
        if (lo >= 0) order.push(inner[lo--]!)
        if (hi < inner.length) order.push(inner[hi++]!)
      }
      return { pinned, order }
    }
    case "smart": {
      const firstUser = others.find((i) => list[i]!.user)
      if (firstUser !== undefined) pinned.add(firstUser)
      pinned.add(last)
      return { pinned, order: others.filter((i) => !pinned.has(i)) }
    }
  }
}

/**
 * The token budget {@link fit} works to and the model it counts for.
 *
 * @since 0.1.0
 * @category getters
 */
export const budgetOf = (
  request: LlmRequest,
  options: Omit<Options, "strategy">
): Effect.Effect<{ readonly limit: number; readonly target: Tokenizer.Target }> =>
  Effect.map(Effect.service(Pricing), (pricing) => {
    const target: Tokenizer.Target = { provider: options.provider ?? "", model: request.model ?? options.model ?? "" }
    if (options.maxInputTokens !== undefined) {
      return { limit: options.maxInputTokens - (options.reserve ?? 0), target }
    }
    const window = pricing.limits(target.provider, target.model).contextWindow
    return { limit: window - (options.reserve ?? request.maxTokens ?? 0), target }
  })

/**
 * Fits a request to its budget (see the module doc): returns it unchanged
 * when it fits, else with whole turns dropped by `strategy`; fails with
 * `ContextLengthExceeded { limit, requested }` when even the turns the
 * strategy must keep do not fit.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { ContextWindow } from "@switchboard/core"
 *
 * const fitted = ContextWindow.fit(
 *   { model: "gpt-4o", messages: [{ role: "user", content: "hello" }] },
 *   { strategy: "smart", maxInputTokens: 1000 }
 * )
 * ```
 *
 * @since 0.1.0
 * @category combinators
 */
export const fit = Effect.fnUntraced(function*(
  request: LlmRequest,
  options: {
    readonly strategy: Strategy
    readonly maxInputTokens?: number | undefined
    readonly reserve?: number | undefined
    readonly provider?: string | undefined
    readonly model?: string | undefined
  }
) {
  const { limit, target } = yield* budgetOf(request, options)
  const whole = yield* Tokenizer.countRequest(request, target)
  if (whole.tokens <= limit) return request
  const list = turnsOf(request.messages)
  const { order, pinned } = plan(list, options.strategy)
  const kept = new Set(list.map((_, i) => i))
  const build = (): LlmRequest => ({
    ...request,
    messages: list.flatMap((turn, i) => kept.has(i) ? turn.messages : [])
  })
  for (const index of order) {
    kept.delete(index)
    const candidate = build()
    const count = yield* Tokenizer.countRequest(candidate, target)
    if (count.tokens <= limit) return candidate
  }
  // Only the pinned turns are left and they are still too long.
  const minimum = yield* Tokenizer.countRequest(
    { ...request, messages: list.flatMap((turn, i) => pinned.has(i) ? turn.messages : []) },
    target
  )
  return yield* new ContextLengthExceeded({
    provider: target.provider.length > 0 ? target.provider : "switchboard",
    ...(target.model.length > 0 ? { model: target.model } : {}),
    limit,
    requested: minimum.tokens,
    detail: `even the turns the "${options.strategy}" strategy keeps need ${minimum.tokens} tokens`
  })
})

/**
 * Wraps a service so every request (generate and stream) is {@link fit}ted
 * before it goes down.
 *
 * @since 0.1.0
 * @category combinators
 */
export const wrap = (options: Options) => (llm: LLM["Service"]): LLM["Service"] =>
  LLM.of({
    generate: (request) => Effect.flatMap(fit(request, options), llm.generate),
    stream: (request) => Stream.unwrap(Effect.map(fit(request, options), llm.stream))
  })

/**
 * Decodes the options (a bad one fails with `SwitchboardConfigError` naming
 * it, e.g. `ContextWindow.strategy`) and returns the wrapper.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options) =>
  Effect.map(SwitchboardConfigError.decode("ContextWindow", Options, options), wrap)

/**
 * Fits every request to its model's window on its way down.
 *
 * @example
 * ```ts
 * import { ContextWindow, Llm } from "@switchboard/core"
 *
 * const fitted = Llm.layerTest([{ text: "ok" }]).pipe(ContextWindow.layer({ strategy: "smart", reserve: 1024 }))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options) => transform(make(options))

// ---------------------------------------------------------------------------
// Pruning retrieved context
// ---------------------------------------------------------------------------

/**
 * A retrieved item: its `text` (or `content`), a relevance `score` (or
 * `relevance`; higher is more relevant) and/or a `timestamp` (epoch ms or a
 * `Date`; newer is more recent). Other fields are kept as they are.
 *
 * @since 0.1.0
 * @category models
 */
export type Item =
  & ({ readonly text: string } | { readonly content: string })
  & {
    readonly score?: number | undefined
    readonly relevance?: number | undefined
    readonly timestamp?: number | Date | undefined
  }

const textOf = (item: Item): string => "text" in item ? item.text : item.content
const scoreOf = (item: Item): number | undefined => item.score ?? item.relevance
const timeOf = (item: Item): number | undefined =>
  item.timestamp instanceof Date ? item.timestamp.getTime() : item.timestamp

/**
 * The options of {@link prune}.
 *
 * @since 0.1.0
 * @category models
 */
export const PruneOptions = Schema.Struct({
  maxTokens: nonNegativeInt,
  strategy: Schema.Literals(["relevance", "recency", "hybrid"]),
  weights: Schema.optional(Schema.Struct({
    relevance: Schema.Number.check(Schema.isGreaterThanOrEqualTo(0)),
    recency: Schema.Number.check(Schema.isGreaterThanOrEqualTo(0))
  })),
  model: Schema.optional(Schema.String),
  provider: Schema.optional(Schema.String)
})
/** @since 0.1.0 @category models */
export type PruneOptions = typeof PruneOptions.Type

/** Min-max normalised values (all equal → all 1; missing → 0). */
const normalise = (values: ReadonlyArray<number | undefined>): ReadonlyArray<number> => {
  const present = values.filter((v): v is number => v !== undefined && Number.isFinite(v))
  if (present.length === 0) return values.map(() => 0)
  const min = Math.min(...present)
  const max = Math.max(...present)
  return values.map((v) => v === undefined || !Number.isFinite(v) ? 0 : max === min ? 1 : (v - min) / (max - min))
}

/**
 * Picks retrieved items within `maxTokens` (counted with the `Tokenizer` for
 * `model`, default `gpt-4o`): ranks them by `score` (`"relevance"`), by
 * `timestamp` (`"recency"`), or by `weights.relevance × score +
 * weights.recency × recency` after scaling both to 0…1 (`"hybrid"`, weights
 * default 0.5 / 0.5), then takes them best first, skipping any that would
 * overflow the budget. Returns the picked items best first. Bad options fail
 * with `SwitchboardConfigError` naming them (`ContextWindow.prune.maxTokens`).
 *
 * @since 0.1.0
 * @category combinators
 */
export const prune = Effect.fnUntraced(function*<A extends Item>(items: ReadonlyArray<A>, options: PruneOptions) {
  const decoded = yield* SwitchboardConfigError.decode("ContextWindow.prune", PruneOptions, options)
  const target: Tokenizer.Target = { provider: decoded.provider ?? "openai", model: decoded.model ?? "gpt-4o" }
  const relevance = normalise(items.map(scoreOf))
  const recency = normalise(items.map(timeOf))
  const weights = decoded.weights ?? { relevance: 0.5, recency: 0.5 }
  const rank = (i: number): number =>
    decoded.strategy === "relevance"
      ? scoreOf(items[i]!) ?? Number.NEGATIVE_INFINITY
      : decoded.strategy === "recency"
      ? timeOf(items[i]!) ?? Number.NEGATIVE_INFINITY
      : weights.relevance * relevance[i]! + weights.recency * recency[i]!
  // Ties keep the input order.
  const order = items.map((_, i) => i).sort((a, b) => rank(b) - rank(a) || a - b)
  const picked: Array<A> = []
  let used = 0
  for (const i of order) {
    const { tokens } = yield* Tokenizer.countText(textOf(items[i]!), target)
    if (used + tokens > decoded.maxTokens) continue
    used += tokens
    picked.push(items[i]!)
  }
  return picked as ReadonlyArray<A>
})
