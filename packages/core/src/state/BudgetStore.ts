/**
 * Where a `Budget` keeps its money: spent and reserved dollars per scope and
 * window, and the reservations in flight.
 *
 * The store is a service so several processes can share one budget: the
 * memory store here is one process's, `@switchboard/redis` gives each
 * operation as one Lua script over the same shapes. Every operation is
 * atomic (the memory store runs each one synchronously in a single effect
 * step) and names everything explicitly, so a script needs no other state:
 *
 * - a scope's record is keyed by `key` (the budget's `name` and the scope)
 *   and holds the window it counts (`windowId`, chosen by the caller from the
 *   `Clock`), what is spent in it, what is reserved, and whether the window
 *   is `closed` (after an overrun);
 * - a call holds a reservation by `reservationId` with an expiry, so a
 *   reservation whose owner died is reclaimed once it expires;
 * - when a call names a newer window than the record's, the record rolls:
 *   spend starts at 0, the window opens, reservations in flight carry over.
 *
 * The memory store is bounded (see {@link layerMemory}): at most `capacity`
 * scopes (the least recently used goes first) and a scope untouched for
 * `idleTtl` is dropped. A `Budget` sets `idleTtl` to its window length, so a
 * scope is only forgotten once its window is over — exact; a scope evicted by
 * capacity while its window is open forgets its spend, so size `capacity`
 * above the number of scopes active in one window.
 *
 * @since 0.1.0
 */
import { Context, Effect, Layer, Schema } from "effect"
import * as BoundedMap from "./BoundedMap.ts"

/**
 * A store operation that could not complete (e.g. Redis unreachable).
 *
 * @since 0.1.0
 * @category errors
 */
export class BudgetStoreError extends Schema.TaggedError<BudgetStoreError>()("BudgetStoreError", {
  operation: Schema.String,
  detail: Schema.String
}) {
  override get message(): string {
    return `budget store ${this.operation} failed: ${this.detail}`
  }
}

/**
 * A scope's money in one window.
 *
 * @since 0.1.0
 * @category models
 */
export interface WindowState {
  readonly spentUsd: number
  readonly reservedUsd: number
  /** True once an overrun closed the window: every reservation is refused until it rolls. */
  readonly closed: boolean
}

/**
 * Reserve `amountUsd` if it fits under `limitUsd` next to what is spent and
 * reserved, and the window is open.
 *
 * @since 0.1.0
 * @category models
 */
export interface ReserveInput {
  readonly key: string
  readonly windowId: string
  readonly reservationId: string
  readonly amountUsd: number
  readonly limitUsd: number
  /** Epoch ms after which the store may reclaim the reservation. */
  readonly expiresAt: number
  /** Epoch ms, from the caller's `Clock`. */
  readonly now: number
}

/**
 * What a reserve answered, with the window's state after it.
 *
 * @since 0.1.0
 * @category models
 */
export interface ReserveResult {
  readonly reserved: boolean
  readonly state: WindowState
}

/**
 * How far beyond its reservation a reported cost may go before the window
 * closes: a report more than twice the worst case is not a counting
 * difference, it is garbage or a provider billing what it was not asked for.
 *
 * @since 0.1.0
 * @category constants
 */
export const overrunFactor = 2

/**
 * Settle a reservation to `costUsd` (what the provider will bill). Spend
 * never goes down: a negative or non-finite cost is clamped (negative to 0).
 * A cost above what the reservation held is an overrun: recorded as it is.
 * A gross overrun — more than {@link overrunFactor} times what was held, so
 * the provider's report is beyond any worst case — closes the window. A
 * small one (a provider counting a few more prompt tokens than the local
 * tokenizer: chat formatting, tool-schema overhead) is recorded and reported,
 * and the window stays open.
 *
 * @since 0.1.0
 * @category models
 */
export interface SettleInput {
  readonly key: string
  readonly windowId: string
  readonly reservationId: string
  readonly costUsd: number
  /** Spend at which the soft limit fires, once per window (omit for none). */
  readonly softAtUsd?: number | undefined
  readonly now: number
}

/**
 * What a settle did.
 *
 * @since 0.1.0
 * @category models
 */
export interface SettleResult {
  readonly state: WindowState
  /** What the reservation held (0 when it was unknown or already reclaimed). */
  readonly heldUsd: number
  /** What was charged (the cost, clamped). */
  readonly chargedUsd: number
  /** The charge exceeded what was held. */
  readonly overrun: boolean
  /** The overrun was gross (beyond {@link overrunFactor}× the reservation): the window is now closed. */
  readonly closed?: boolean | undefined
  /** This settle took spend across `softAtUsd` for the first time in the window. */
  readonly softCrossed: boolean
}

/**
 * A window to read or a reservation to release.
 *
 * @since 0.1.0
 * @category models
 */
export interface WindowRef {
  readonly key: string
  readonly windowId: string
  readonly now: number
}

/**
 * The budget store service.
 *
 * @since 0.1.0
 * @category models
 */
export interface BudgetStoreService {
  readonly reserve: (input: ReserveInput) => Effect.Effect<ReserveResult, BudgetStoreError>
  readonly settle: (input: SettleInput) => Effect.Effect<SettleResult, BudgetStoreError>
  /** Gives a reservation back unspent (a settle at 0). */
  readonly release: (
    input: WindowRef & { readonly reservationId: string }
  ) => Effect.Effect<WindowState, BudgetStoreError>
  /** The window's state, without changing anything. */
  readonly read: (input: WindowRef) => Effect.Effect<WindowState, BudgetStoreError>
  /** Keys held now (memory stores; a shared store may answer only its own view). */
  readonly keys: (now: number) => Effect.Effect<ReadonlyArray<string>, BudgetStoreError>
  /** The scope records held now (for bounds checks). */
  readonly size: (now: number) => Effect.Effect<number, BudgetStoreError>
}

/**
 * The store a `Budget` uses when one is provided; without it each budget
 * builds its own {@link makeMemory} store.
 *
 * @since 0.1.0
 * @category services
 */
export class BudgetStore extends Context.Service<BudgetStore, BudgetStoreService>()(
  "@switchboard/core/BudgetStore"
) {}

/**
 * Bounds of the memory store.
 *
 * @since 0.1.0
 * @category models
 */
export interface MemoryBounds {
  /** Most scopes kept (default 10,000); the least recently used goes first. */
  readonly capacity?: number | undefined
  /** Milliseconds a scope may stay untouched before it is dropped (default: never). */
  readonly idleTtlMs?: number | undefined
}

interface Held {
  readonly amount: number
  readonly expiresAt: number
}

interface Record {
  windowId: string
  spent: number
  reserved: number
  closed: boolean
  softFired: boolean
  readonly held: Map<string, Held>
  /** The earliest expiry among `held` (Infinity when none). */
  nextExpiry: number
}

const emptyRecord = (windowId: string): Record => ({
  windowId,
  spent: 0,
  reserved: 0,
  closed: false,
  softFired: false,
  held: new Map(),
  nextExpiry: Number.POSITIVE_INFINITY
})

const stateOf = (record: Record): WindowState => ({
  spentUsd: record.spent,
  reservedUsd: record.reserved,
  closed: record.closed
})

const emptyWindow: WindowState = { spentUsd: 0, reservedUsd: 0, closed: false }

/** A cost as it may be charged: finite and never negative (spend never goes down). */
const chargeable = (cost: number): number =>
  Number.isNaN(cost) || cost <= 0 ? 0 : cost === Number.POSITIVE_INFINITY ? Number.MAX_VALUE : cost

/**
 * The synchronous core of the memory store, for callers that run it inside
 * one effect step (a `Budget` over its own memory store does, to keep the
 * hot path free of extra effects).
 *
 * @since 0.1.0
 * @category models
 */
export interface MemoryStore extends BudgetStoreService {
  readonly [MemoryTypeId]: typeof MemoryTypeId
  readonly reserveSync: (input: ReserveInput) => ReserveResult
  readonly settleSync: (input: SettleInput) => SettleResult
  readonly readSync: (input: WindowRef) => WindowState
}

const MemoryTypeId: unique symbol = Symbol.for("@switchboard/core/BudgetStore/Memory")

/**
 * Whether a store is a {@link makeMemory} store (whose synchronous core a
 * `Budget` may call directly).
 *
 * @since 0.1.0
 * @category guards
 */
export const isMemoryStore = (store: BudgetStoreService): store is MemoryStore => MemoryTypeId in store

/**
 * A bounded in-process store (see the module docs).
 *
 * @example
 * ```ts
 * import { BudgetStore } from "@switchboard/core"
 *
 * const store = BudgetStore.makeMemory({ capacity: 1000, idleTtlMs: 86_400_000 })
 * store.reserveSync({ key: "b:tenant-1", windowId: "0", reservationId: "r1", amountUsd: 1, limitUsd: 5, expiresAt: 60_000, now: 0 })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeMemory = (bounds: MemoryBounds = {}): MemoryStore => {
  const records = BoundedMap.make<Record>({
    capacity: bounds.capacity ?? BoundedMap.defaultBounds.capacity,
    idleTtlMs: bounds.idleTtlMs ?? BoundedMap.defaultBounds.idleTtlMs
  })

  const reclaim = (record: Record, now: number) => {
    if (now < record.nextExpiry) return
    let next = Number.POSITIVE_INFINITY
    for (const [id, held] of record.held) {
      if (held.expiresAt <= now) {
        record.held.delete(id)
        record.reserved = record.held.size === 0 ? 0 : Math.max(0, record.reserved - held.amount)
      } else if (held.expiresAt < next) next = held.expiresAt
    }
    record.nextExpiry = next
  }

  /** The record for `key`, rolled to `windowId` (reservations carry over), expired reservations reclaimed. */
  const recordAt = (key: string, windowId: string, now: number): Record => {
    let record = records.get(key, now)
    if (record === undefined) {
      record = emptyRecord(windowId)
      records.set(key, record, now)
      return record
    }
    if (record.windowId !== windowId) {
      record.windowId = windowId
      record.spent = 0
      record.closed = false
      record.softFired = false
    }
    reclaim(record, now)
    return record
  }

  const reserveSync = (input: ReserveInput): ReserveResult => {
    const record = recordAt(input.key, input.windowId, input.now)
    // Compare in a form that cannot round a fitting reservation over the limit.
    if (record.closed || record.spent + record.reserved + input.amountUsd > input.limitUsd) {
      return { reserved: false, state: stateOf(record) }
    }
    record.reserved = record.reserved + input.amountUsd
    record.held.set(input.reservationId, { amount: input.amountUsd, expiresAt: input.expiresAt })
    if (input.expiresAt < record.nextExpiry) record.nextExpiry = input.expiresAt
    return { reserved: true, state: stateOf(record) }
  }

  const settleSync = (input: SettleInput): SettleResult => {
    const record = recordAt(input.key, input.windowId, input.now)
    const held = record.held.get(input.reservationId)
    const heldUsd = held?.amount ?? 0
    if (held !== undefined) {
      record.held.delete(input.reservationId)
      // Nothing held is exactly nothing reserved (no rounding residue from many adds and subtracts).
      record.reserved = record.held.size === 0 ? 0 : Math.max(0, record.reserved - heldUsd)
    }
    const charged = chargeable(input.costUsd)
    const before = record.spent
    record.spent = before + charged
    // A relative tolerance, so a cost that equals its reservation up to rounding is not an overrun.
    const overrun = held !== undefined && charged > heldUsd * (1 + 1e-9) + 1e-15
    const closes = overrun && charged > heldUsd * overrunFactor + 1e-12
    if (closes) record.closed = true
    const softCrossed = input.softAtUsd !== undefined && !record.softFired && charged > 0 &&
      record.spent >= input.softAtUsd
    if (softCrossed) record.softFired = true
    return { state: stateOf(record), heldUsd, chargedUsd: charged, overrun, closed: closes, softCrossed }
  }

  // A read does not touch the scope: reading a budget does not keep an idle scope alive.
  const readSync = (input: WindowRef): WindowState => {
    const record = records.peek(input.key, input.now)
    if (record === undefined) return emptyWindow
    reclaim(record, input.now)
    return record.windowId === input.windowId
      ? stateOf(record)
      : { spentUsd: 0, reservedUsd: record.reserved, closed: false }
  }

  return {
    [MemoryTypeId]: MemoryTypeId,
    reserveSync,
    settleSync,
    readSync,
    reserve: (input) => Effect.sync(() => reserveSync(input)),
    settle: (input) => Effect.sync(() => settleSync(input)),
    release: (input) =>
      Effect.sync(() =>
        settleSync({ key: input.key, windowId: input.windowId, reservationId: input.reservationId, costUsd: 0, now: input.now })
          .state
      ),
    read: (input) => Effect.sync(() => readSync(input)),
    keys: (now) => Effect.sync(() => Array.from(records.entries(now), ([key]) => key)),
    size: (now) => Effect.sync(() => records.size(now))
  }
}

/**
 * A bounded memory store as a layer, shared by every `Budget` built under it
 * (budgets with the same `name` then share spend).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory = (bounds: MemoryBounds = {}): Layer.Layer<BudgetStore> =>
  Layer.sync(BudgetStore, () => makeMemory(bounds))
