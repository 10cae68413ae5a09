/**
 * Where the money went: a ledger of every attempt — successful, failed,
 * partial or hedged — with totals by provider, model, tenant and tag and the
 * cost of the whole session.
 *
 * `CostLedger` is a `Context.Reference` whose default records nothing and
 * costs nothing. Provide {@link layer} to keep an in-memory ledger, then read
 * it with {@link snapshot} (data, plus `format()` for a printable table) or
 * {@link sessionCost}. Every provider leaf built with `Llm.make` records each
 * attempt it makes (failed, interrupted and partial ones included), so the
 * ledger's total is always the sum of the attempts' costs.
 *
 * What a provider reports is not trusted blindly: a negative, non-finite or
 * fractional token count and a negative or non-finite cost are clamped when
 * recorded (counts to non-negative safe integers, costs to finite ≥ 0), so
 * the ledger's totals never go down and never become `Infinity` or `NaN`.
 * Recording is O(1) per attempt (totals are updated in place; a snapshot
 * copies them).
 *
 * @since 0.1.0
 */
import { Clock, Context, Effect, Layer } from "effect"
import type { Metadata } from "../LlmRequest.ts"
import type { Attempt } from "../LlmResponse.ts"

/**
 * Totals of a group of attempts.
 *
 * @since 0.1.0
 * @category models
 */
export interface Totals {
  readonly attempts: number
  readonly failures: number
  readonly inputTokens: number
  readonly outputTokens: number
  readonly costUsd: number
}

/**
 * What the ledger holds at one moment. `byModel` keys are `provider/model`;
 * an attempt with several tags counts once under each. `format()` renders
 * the whole snapshot as a text table.
 *
 * @since 0.1.0
 * @category models
 */
export interface Snapshot {
  readonly since: number
  readonly total: Totals
  readonly byProvider: Readonly<Record<string, Totals>>
  readonly byModel: Readonly<Record<string, Totals>>
  readonly byTenant: Readonly<Record<string, Totals>>
  readonly byTag: Readonly<Record<string, Totals>>
  /** By prompt template, keyed `id@version` (requests rendered by `PromptTemplate` carry `metadata.prompt`). */
  readonly byPrompt: Readonly<Record<string, Totals>>
  readonly format: () => string
}

/**
 * The ledger service.
 *
 * @since 0.1.0
 * @category models
 */
export interface CostLedgerService {
  /** False for the default no-op ledger. */
  readonly enabled: boolean
  /** Records one attempt, with the request's metadata (tenant, tags) when known. */
  readonly record: (attempt: Attempt, metadata?: Metadata | undefined) => Effect.Effect<void>
  readonly snapshot: Effect.Effect<Snapshot>
  /** The cost of every attempt recorded since the ledger was built (or reset). */
  readonly sessionCost: Effect.Effect<number>
  readonly reset: Effect.Effect<void>
}

const zero: Totals = { attempts: 0, failures: 0, inputTokens: 0, outputTokens: 0, costUsd: 0 }

const emptySnapshot = (since: number): Snapshot => {
  const snapshot: Snapshot = {
    since,
    total: zero,
    byProvider: {},
    byModel: {},
    byTenant: {},
    byTag: {},
    byPrompt: {},
    format: () => format(snapshot)
  }
  return snapshot
}

/**
 * A ledger that records nothing: the default.
 *
 * @since 0.1.0
 * @category constructors
 */
export const noop: CostLedgerService = {
  enabled: false,
  record: () => Effect.void,
  snapshot: Effect.sync(() => emptySnapshot(0)),
  sessionCost: Effect.succeed(0),
  reset: Effect.void
}

/**
 * The ledger in context: a no-op unless {@link layer} is provided.
 *
 * @since 0.1.0
 * @category services
 */
export const CostLedger: Context.Reference<CostLedgerService> = Context.Reference<CostLedgerService>(
  "@switchboard/core/CostLedger",
  { defaultValue: () => noop }
)

interface MutableTotals {
  attempts: number
  failures: number
  inputTokens: number
  outputTokens: number
  costUsd: number
}

interface State {
  since: number
  readonly total: MutableTotals
  readonly byProvider: Map<string, MutableTotals>
  readonly byModel: Map<string, MutableTotals>
  readonly byTenant: Map<string, MutableTotals>
  readonly byTag: Map<string, MutableTotals>
  readonly byPrompt: Map<string, MutableTotals>
}

/** A token count as it may be recorded: a non-negative safe integer. */
const tokens = (n: number | undefined): number =>
  n === undefined || !(n > 0) ? 0 : n >= Number.MAX_SAFE_INTEGER ? Number.MAX_SAFE_INTEGER : Math.floor(n)

/** A cost as it may be recorded: finite and never negative (spend never goes down). */
const dollars = (n: number): number => !(n > 0) ? 0 : n === Number.POSITIVE_INFINITY ? Number.MAX_VALUE : n

/**
 * The attempt as the ledger records it: usage counts non-negative safe
 * integers, cost finite and ≥ 0.
 *
 * @since 0.1.0
 * @category utils
 */
export const sanitize = (attempt: Attempt): Attempt => {
  const usage = attempt.usage
  const cost = dollars(attempt.costUsd)
  if (
    cost === attempt.costUsd &&
    (usage === undefined ||
      (tokens(usage.inputTokens) === usage.inputTokens && tokens(usage.outputTokens) === usage.outputTokens))
  ) return attempt
  return {
    ...attempt,
    costUsd: cost,
    ...(usage === undefined
      ? {}
      : { usage: { ...usage, inputTokens: tokens(usage.inputTokens), outputTokens: tokens(usage.outputTokens) } })
  }
}

const zeroTotals = (): MutableTotals => ({ attempts: 0, failures: 0, inputTokens: 0, outputTokens: 0, costUsd: 0 })

const add = (totals: MutableTotals, attempt: Attempt): void => {
  totals.attempts += 1
  totals.failures += attempt.outcome === "ok" ? 0 : 1
  // Token totals saturate at the largest safe integer rather than lose precision.
  totals.inputTokens = Math.min(Number.MAX_SAFE_INTEGER, totals.inputTokens + (attempt.usage?.inputTokens ?? 0))
  totals.outputTokens = Math.min(Number.MAX_SAFE_INTEGER, totals.outputTokens + (attempt.usage?.outputTokens ?? 0))
  totals.costUsd += attempt.costUsd
}

const bump = (map: Map<string, MutableTotals>, key: string, attempt: Attempt): void => {
  let totals = map.get(key)
  if (totals === undefined) map.set(key, totals = zeroTotals())
  add(totals, attempt)
}

const recordIn = (state: State, raw: Attempt, metadata: Metadata | undefined): void => {
  const attempt = sanitize(raw)
  if (metadata?.tags !== undefined) {
    for (const tag of new Set(metadata.tags)) bump(state.byTag, tag, attempt)
  }
  add(state.total, attempt)
  bump(state.byProvider, attempt.provider, attempt)
  bump(state.byModel, `${attempt.provider}/${attempt.model}`, attempt)
  if (metadata?.tenant !== undefined) bump(state.byTenant, metadata.tenant, attempt)
  if (metadata?.prompt !== undefined) bump(state.byPrompt, `${metadata.prompt.id}@${metadata.prompt.version}`, attempt)
}

const copyOf = (map: Map<string, MutableTotals>): Record<string, Totals> => {
  const out: Record<string, Totals> = {}
  for (const [key, totals] of map) out[key] = { ...totals }
  return out
}

const toSnapshot = (state: State): Snapshot => {
  const snapshot: Snapshot = {
    since: state.since,
    total: { ...state.total },
    byProvider: copyOf(state.byProvider),
    byModel: copyOf(state.byModel),
    byTenant: copyOf(state.byTenant),
    byTag: copyOf(state.byTag),
    byPrompt: copyOf(state.byPrompt),
    format: () => format(snapshot)
  }
  return snapshot
}

/**
 * An in-memory ledger.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: Effect.Effect<CostLedgerService> = Effect.gen(function*() {
  const fresh = (since: number): State => ({
    since,
    total: zeroTotals(),
    byProvider: new Map(),
    byModel: new Map(),
    byTenant: new Map(),
    byTag: new Map(),
    byPrompt: new Map()
  })
  // One mutable state, changed only inside synchronous effect steps (fibers share one thread).
  let state = fresh(yield* Clock.currentTimeMillis)
  return {
    enabled: true,
    record: (attempt, metadata) => Effect.sync(() => recordIn(state, attempt, metadata)),
    snapshot: Effect.sync(() => toSnapshot(state)),
    sessionCost: Effect.sync(() => state.total.costUsd),
    reset: Effect.flatMap(Clock.currentTimeMillis, (now) => Effect.sync(() => void (state = fresh(now))))
  }
})

/**
 * Turns the ledger on: every attempt recorded from here is kept in memory.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<never> = Layer.effect(CostLedger, make)

/**
 * Records an attempt in the ledger in context.
 *
 * @since 0.1.0
 * @category accessors
 */
export const record = (attempt: Attempt, metadata?: Metadata | undefined): Effect.Effect<void> =>
  Effect.flatMap(CostLedger, (ledger) => ledger.enabled ? ledger.record(attempt, metadata) : Effect.void)

/**
 * The ledger in context, now.
 *
 * @since 0.1.0
 * @category accessors
 */
export const snapshot: Effect.Effect<Snapshot> = Effect.flatMap(CostLedger, (ledger) => ledger.snapshot)

/**
 * The cost of every attempt recorded this session.
 *
 * @since 0.1.0
 * @category accessors
 */
export const sessionCost: Effect.Effect<number> = Effect.flatMap(CostLedger, (ledger) => ledger.sessionCost)

const usd = (n: number): string => n === 0 ? "0" : n < 0.01 ? n.toFixed(6) : n.toFixed(4)

/**
 * Renders a snapshot as a text table: one row for the total, then one per
 * provider, model, tenant and tag, each with attempts, failures, tokens and
 * dollars.
 *
 * @since 0.1.0
 * @category formatting
 */
export const format = (snapshot: Snapshot): string => {
  const rows: Array<ReadonlyArray<string>> = [["group", "key", "attempts", "failed", "input", "output", "cost USD"]]
  const row = (group: string, key: string, t: Totals) =>
    rows.push([group, key, String(t.attempts), String(t.failures), String(t.inputTokens), String(t.outputTokens), usd(t.costUsd)])
  row("total", "", snapshot.total)
  const groups: ReadonlyArray<readonly [string, Readonly<Record<string, Totals>>]> = [
    ["provider", snapshot.byProvider],
    ["model", snapshot.byModel],
    ["tenant", snapshot.byTenant],
    ["tag", snapshot.byTag],
    ["prompt", snapshot.byPrompt]
  ]
  for (const [group, totals] of groups) {
    for (const key of Object.keys(totals).sort()) row(group, key, totals[key]!)
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)))
  return rows
    .map((r) => r.map((cell, i) => i >= 2 ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!)).join("  ").trimEnd())
    .join("\n")
}
