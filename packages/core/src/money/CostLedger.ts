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
 * @since 0.1.0
 */
import { Clock, Context, Effect, Layer, Ref } from "effect"
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

interface State {
  readonly since: number
  readonly total: Totals
  readonly byProvider: ReadonlyMap<string, Totals>
  readonly byModel: ReadonlyMap<string, Totals>
  readonly byTenant: ReadonlyMap<string, Totals>
  readonly byTag: ReadonlyMap<string, Totals>
}

const add = (totals: Totals | undefined, attempt: Attempt): Totals => {
  const base = totals ?? zero
  return {
    attempts: base.attempts + 1,
    failures: base.failures + (attempt.outcome === "ok" ? 0 : 1),
    inputTokens: base.inputTokens + (attempt.usage?.inputTokens ?? 0),
    outputTokens: base.outputTokens + (attempt.usage?.outputTokens ?? 0),
    costUsd: base.costUsd + attempt.costUsd
  }
}

const bump = (map: ReadonlyMap<string, Totals>, key: string, attempt: Attempt): ReadonlyMap<string, Totals> => {
  const next = new Map(map)
  next.set(key, add(map.get(key), attempt))
  return next
}

const recordIn = (state: State, attempt: Attempt, metadata: Metadata | undefined): State => {
  let byTag = state.byTag
  if (metadata?.tags !== undefined) {
    for (const tag of new Set(metadata.tags)) byTag = bump(byTag, tag, attempt)
  }
  return {
    since: state.since,
    total: add(state.total, attempt),
    byProvider: bump(state.byProvider, attempt.provider, attempt),
    byModel: bump(state.byModel, `${attempt.provider}/${attempt.model}`, attempt),
    byTenant: metadata?.tenant === undefined ? state.byTenant : bump(state.byTenant, metadata.tenant, attempt),
    byTag
  }
}

const toSnapshot = (state: State): Snapshot => {
  const snapshot: Snapshot = {
    since: state.since,
    total: state.total,
    byProvider: Object.fromEntries(state.byProvider),
    byModel: Object.fromEntries(state.byModel),
    byTenant: Object.fromEntries(state.byTenant),
    byTag: Object.fromEntries(state.byTag),
    format: () => format(snapshot)
  }
  return snapshot
}

/**
 * An in-memory ledger (state in a `Ref`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: Effect.Effect<CostLedgerService> = Effect.gen(function*() {
  const fresh = (since: number): State => ({
    since,
    total: zero,
    byProvider: new Map(),
    byModel: new Map(),
    byTenant: new Map(),
    byTag: new Map()
  })
  const ref = yield* Ref.make(fresh(yield* Clock.currentTimeMillis))
  return {
    enabled: true,
    record: (attempt, metadata) => Ref.update(ref, (state) => recordIn(state, attempt, metadata)),
    snapshot: Effect.map(Ref.get(ref), toSnapshot),
    sessionCost: Effect.map(Ref.get(ref), (state) => state.total.costUsd),
    reset: Effect.flatMap(Clock.currentTimeMillis, (now) => Ref.set(ref, fresh(now)))
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
    ["tag", snapshot.byTag]
  ]
  for (const [group, totals] of groups) {
    for (const key of Object.keys(totals).sort()) row(group, key, totals[key]!)
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)))
  return rows
    .map((r) => r.map((cell, i) => i >= 2 ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!)).join("  ").trimEnd())
    .join("\n")
}
