/**
 * Core's `BudgetStore` on Redis: many processes share one budget, exactly.
 *
 * Reserve, settle and release are each ONE Lua script (atomic in Redis), so
 * spent + reserved never passes the limit however many instances reserve at
 * once. Windows are the explicit ids the `Budget` chooses; reservation
 * expiries are on the Redis clock only. A reservation whose owner crashed is
 * reclaimed once it expires (the budget's `reservationTtl`) and written to
 * the ledger stream `<prefix>b:ledger`; a settle arriving after that still
 * charges (spend is never lost), and a settle repeated charges nothing.
 *
 * When Redis does not answer within the command timeout:
 * - `failClosed` (the default for budgets): reserve, read and keys fail with
 *   `BudgetStoreError` (a `Budget` then refuses the call, or lets it through
 *   unbudgeted under its own `onStoreError: "failOpen"`);
 * - `failOpen`: the store serves from a local memory store, limited to what
 *   this instance last saw remaining, and publishes `StoreDegraded`.
 * Either way a settle that cannot reach Redis is journalled and replayed
 * when Redis is back (the replay is idempotent), and charges made on local
 * state are added to the shared window then: nothing is lost, and the
 * reconciliation is reported (`StoreDegraded` with the amounts, and
 * {@link RedisBudgetStore.reconciled}).
 *
 * @since 0.1.0
 */
import { BudgetStore } from "@switchboard/core"
import { Effect, Metric, Schedule } from "effect"
import { Redis } from "effect/persistence"
import { Events } from "@switchboard/core"
import * as Lua from "./internal/budgetLua.ts"
import type * as Guard from "./internal/guard.ts"

/**
 * Options of the Redis budget store.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Key prefix, e.g. `"switchboard:"`. */
  readonly prefix: string
  /** How long a scope's keys live after their last write (ms); at least the longest budget window. */
  readonly keyTtlMs: number
  /** How often the journal of unreconciled settles is retried (ms). */
  readonly reconcileEveryMs: number
}

/**
 * What reconciliation has applied since the store was built.
 *
 * @since 0.1.0
 * @category models
 */
export interface Reconciled {
  /** Settles replayed to Redis. */
  readonly settles: number
  /** Releases replayed (including reserves that timed out, in case Redis ran them late). */
  readonly releases: number
  /** Charges made on local state while degraded, added to Redis. */
  readonly localCharges: number
  /** Their sum in USD. */
  readonly localUsd: number
  /** Operations waiting for Redis now. */
  readonly pending: number
}

/**
 * The Redis budget store, with its reconciliation state.
 *
 * @since 0.1.0
 * @category models
 */
export interface RedisBudgetStore extends BudgetStore.BudgetStoreService {
  /** Replays the journal now (also done on recovery and every `reconcileEveryMs`). */
  readonly reconcile: Effect.Effect<Reconciled>
  readonly reconciled: Effect.Effect<Reconciled>
}

type Pending =
  | {
    readonly _tag: "Settle"
    readonly input: BudgetStore.SettleInput
    readonly id: string
    readonly dedupe: string | undefined
  }
  | { readonly _tag: "Release"; readonly key: string; readonly windowId: string; readonly id: string }
  | { readonly _tag: "Charge"; readonly key: string; readonly windowId: string; readonly opId: string; readonly costUsd: number }

const maxJournal = 100_000

/**
 * USD given back from reservations that expired unsettled (their instance
 * died or hung).
 *
 * @since 0.1.0
 * @category metrics
 */
export const reclaimedUsd = Metric.counter("switchboard.budget.reclaimed.usd", {
  description: "USD held by reservations that expired unsettled and were reclaimed"
})

/**
 * Builds the store over the `Redis` service (see the module docs). It runs
 * a reconciliation fiber in the current scope.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = Effect.fnUntraced(function*(options: Options, guard: Guard.Guard) {
  const redis = yield* Redis.Redis
  const { keyTtlMs, prefix } = options
  const instance = crypto.randomUUID().slice(0, 12)
  const failOpen = guard.policy === "failOpen"
  const local = BudgetStore.makeMemory({ capacity: 10_000 })
  /** Reservations made on local state (failOpen while degraded). */
  const localIds = new Set<string>()
  /** The shared spend last seen per key: a degraded instance only spends what was left. */
  const lastSpent = new Map<string, number>()
  const journal: Array<Pending> = []
  let dropped = 0
  let nextOp = 0
  const totals = { settles: 0, releases: 0, localCharges: 0, localUsd: 0 }

  const keysOf = (key: string): Lua.ScopeKeys => ({
    record: `${prefix}b:r:${key}`,
    held: `${prefix}b:h:${key}`,
    expiries: `${prefix}b:e:${key}`,
    reclaimed: `${prefix}b:x:${key}`,
    ledger: `${prefix}b:ledger`
  })
  const reserveLua = redis.eval(Lua.reserve)
  const settleLua = redis.eval(Lua.settle)
  const releaseLua = redis.eval(Lua.release)
  const readLua = redis.eval(Lua.read)

  // Reservation ids are made unique across instances (each Budget counts from 0).
  const remoteId = (id: string) => id === "" ? "" : `${instance}:${id}`

  const see = (key: string, spent: number) => {
    if (lastSpent.size >= 10_000 && !lastSpent.has(key)) lastSpent.clear()
    lastSpent.set(key, spent)
  }

  const error = (operation: string, detail: string) => new BudgetStore.BudgetStoreError({ operation, detail })

  const record = (entry: Pending) => {
    if (journal.length >= maxJournal) {
      journal.shift()
      dropped++
    }
    journal.push(entry)
  }

  /** Reservations whose owner never settled them were given back (they are in the ledger stream too). */
  const reportReclaimed = (key: string, usd: number) =>
    Effect.andThen(
      Metric.update(reclaimedUsd, usd),
      Effect.logWarning(`budget ${key}: reclaimed $${usd} held by expired reservations (see ${prefix}b:ledger)`)
    )

  const settleRemote = (input: BudgetStore.SettleInput, id: string, dedupe: string | undefined) =>
    Effect.flatMap(
      settleLua(
        keysOf(input.key),
        `${prefix}b:d:${dedupe ?? "-"}`,
        input.key,
        input.windowId,
        id,
        input.costUsd,
        input.softAtUsd,
        keyTtlMs,
        dedupe !== undefined
      ),
      ([spent, reserved, closed, held, charged, overrun, softCrossed, reclaimed, closes]) => {
        see(input.key, Number(spent))
        const result: BudgetStore.SettleResult = {
          state: { spentUsd: Number(spent), reservedUsd: Number(reserved), closed: closed === 1 },
          heldUsd: Number(held),
          chargedUsd: Number(charged),
          overrun: overrun === 1,
          closed: closes === 1,
          softCrossed: softCrossed === 1
        }
        return Number(reclaimed) > 0 ? Effect.as(reportReclaimed(input.key, Number(reclaimed)), result) : Effect.succeed(result)
      }
    )

  let closing = false
  const replay = (entry: Pending): Effect.Effect<unknown, Guard.Unavailable> => {
    const run = closing ? guard.runNow : guard.run
    switch (entry._tag) {
      case "Settle":
        return run(settleRemote(entry.input, entry.id, entry.dedupe))
      case "Release":
        return run(releaseLua(keysOf(entry.key), entry.key, entry.windowId, entry.id, keyTtlMs))
      case "Charge":
        return run(settleRemote(
          { key: entry.key, windowId: entry.windowId, reservationId: "", costUsd: entry.costUsd, now: 0 },
          "",
          entry.opId
        ))
    }
  }

  let flushing = false
  const snapshot = (): Reconciled => ({ ...totals, pending: journal.length })
  const reconcile: Effect.Effect<Reconciled> = Effect.suspend(() => {
    if (flushing || journal.length === 0) return Effect.sync(snapshot)
    flushing = true
    let settles = 0
    let releases = 0
    let charges = 0
    let usd = 0
    const loop: Effect.Effect<void> = Effect.suspend(() => {
      const entry = journal[0]
      if (entry === undefined) return Effect.void
      return Effect.matchEffect(replay(entry), {
        onFailure: () => Effect.void,
        onSuccess: () =>
          Effect.suspend(() => {
            if (journal[0] === entry) journal.shift()
            if (entry._tag === "Charge") {
              charges++
              usd += entry.costUsd
            } else if (entry._tag === "Release") releases++
            else settles++
            return loop
          })
      })
    })
    return loop.pipe(
      Effect.andThen(Effect.suspend(() => {
        totals.settles += settles
        totals.releases += releases
        totals.localCharges += charges
        totals.localUsd += usd
        if (settles === 0 && charges === 0 && dropped === 0) return Effect.void
        const lost = dropped
        dropped = 0
        return Events.publish(() => ({
          _tag: "StoreDegraded",
          store: "budget",
          policy: guard.policy,
          detail: `redis back: reconciled ${settles} settles and ${charges} charges made on local state ($${usd})` +
            (journal.length > 0 ? `, ${journal.length} still pending` : "") +
            (lost > 0 ? `, ${lost} journal entries dropped (journal full)` : "")
        }))
      })),
      Effect.ensuring(Effect.sync(() => (flushing = false))),
      Effect.map(snapshot)
    )
  })

  guard.onRecover(() => Effect.asVoid(reconcile))
  // Closing: one last replay (bounded, without the backoff), so a process that stops does not leave
  // settles or late reservations behind.
  yield* Effect.addFinalizer(() =>
    Effect.suspend(() => {
      if (journal.length === 0) return Effect.void
      closing = true
      return Effect.ignore(Effect.timeout(
        Effect.repeat(reconcile, { until: (r) => r.pending === 0, schedule: Schedule.spaced(100) }),
        10_000
      ))
    })
  )
  yield* Effect.forkScoped(
    Effect.repeat(
      // The guard lets a replay through only when Redis is due to be retried.
      Effect.suspend(() => journal.length > 0 ? Effect.asVoid(reconcile) : Effect.void),
      Schedule.spaced(options.reconcileEveryMs)
    )
  )

  const reserve = (input: BudgetStore.ReserveInput): Effect.Effect<BudgetStore.ReserveResult, BudgetStore.BudgetStoreError> =>
    Effect.matchEffect(
      guard.run(reserveLua(
        keysOf(input.key),
        input.key,
        input.windowId,
        remoteId(input.reservationId),
        input.amountUsd,
        input.limitUsd,
        input.expiresAt - input.now,
        keyTtlMs
      )),
      {
        onSuccess: ([ok, spent, reserved, closed, reclaimed]) => {
          see(input.key, Number(spent))
          const result: BudgetStore.ReserveResult = {
            reserved: ok === 1,
            state: { spentUsd: Number(spent), reservedUsd: Number(reserved), closed: closed === 1 }
          }
          return Number(reclaimed) > 0 ? Effect.as(reportReclaimed(input.key, Number(reclaimed)), result) : Effect.succeed(result)
        },
        onFailure: (e) => {
          // The script may still run once Redis answers (a slow Redis): give that reservation back then.
          record({ _tag: "Release", key: input.key, windowId: input.windowId, id: remoteId(input.reservationId) })
          if (!failOpen) return Effect.fail(error("reserve", e.detail))
          return Effect.sync(() => {
            const seen = lastSpent.get(input.key) ?? 0
            const result = local.reserveSync({ ...input, limitUsd: Math.max(0, input.limitUsd - seen) })
            if (result.reserved) localIds.add(input.reservationId)
            return result
          })
        }
      }
    )

  const settleLocal = (input: BudgetStore.SettleInput): BudgetStore.SettleResult => {
    localIds.delete(input.reservationId)
    const result = local.settleSync(input)
    if (result.chargedUsd > 0) {
      record({
        _tag: "Charge",
        key: input.key,
        windowId: input.windowId,
        opId: `${instance}:${nextOp++}`,
        costUsd: result.chargedUsd
      })
    }
    return result
  }

  const settle = (input: BudgetStore.SettleInput): Effect.Effect<BudgetStore.SettleResult, BudgetStore.BudgetStoreError> => {
    if (localIds.has(input.reservationId)) return Effect.sync(() => settleLocal(input))
    const id = remoteId(input.reservationId)
    // A charge without a reservation is applied once, however often it is replayed.
    const dedupe = id === "" ? `${instance}:${nextOp++}` : undefined
    return Effect.catch(
      guard.run(settleRemote(input, id, dedupe)),
      (e) =>
        Effect.suspend(() => {
          // Never lost: replayed (idempotently) when Redis is back.
          record({ _tag: "Settle", input, id, dedupe })
          if (!failOpen) return Effect.fail(error("settle", `${e.detail} (journalled for replay)`))
          const charged = Math.max(0, Number.isFinite(input.costUsd) ? input.costUsd : 0)
          return Effect.succeed<BudgetStore.SettleResult>({
            state: local.readSync(input),
            heldUsd: 0,
            chargedUsd: charged,
            overrun: false,
            softCrossed: false
          })
        })
    )
  }

  const release = (
    input: BudgetStore.WindowRef & { readonly reservationId: string }
  ): Effect.Effect<BudgetStore.WindowState, BudgetStore.BudgetStoreError> => {
    if (localIds.has(input.reservationId)) {
      return Effect.sync(() => {
        localIds.delete(input.reservationId)
        return local.settleSync({ ...input, costUsd: 0 }).state
      })
    }
    const id = remoteId(input.reservationId)
    return Effect.matchEffect(guard.run(releaseLua(keysOf(input.key), input.key, input.windowId, id, keyTtlMs)), {
      onSuccess: ([spent, reserved, closed]) =>
        Effect.succeed({ spentUsd: Number(spent), reservedUsd: Number(reserved), closed: closed === 1 }),
      onFailure: (e) =>
        Effect.suspend(() => {
          record({ _tag: "Release", key: input.key, windowId: input.windowId, id })
          return failOpen ? Effect.succeed(local.readSync(input)) : Effect.fail(error("release", e.detail))
        })
    })
  }

  const read = (input: BudgetStore.WindowRef): Effect.Effect<BudgetStore.WindowState, BudgetStore.BudgetStoreError> =>
    Effect.matchEffect(guard.run(readLua(keysOf(input.key), input.windowId)), {
      onSuccess: ([spent, reserved, closed]) =>
        Effect.succeed({ spentUsd: Number(spent), reservedUsd: Number(reserved), closed: closed === 1 }),
      onFailure: (e) => failOpen ? Effect.succeed(local.readSync(input)) : Effect.fail(error("read", e.detail))
    })

  const scan = (match: string): Effect.Effect<ReadonlyArray<string>, unknown> =>
    Effect.gen(function*() {
      const out: Array<string> = []
      let cursor = "0"
      do {
        const [next, found] = yield* redis.send<[string, Array<string>]>("SCAN", cursor, "MATCH", match, "COUNT", "1000")
        cursor = next
        out.push(...found)
      } while (cursor !== "0")
      return out
    })

  const recordPrefix = `${prefix}b:r:`
  const keys = (now: number): Effect.Effect<ReadonlyArray<string>, BudgetStore.BudgetStoreError> =>
    Effect.matchEffect(guard.run(scan(`${escapeGlob(recordPrefix)}*`)), {
      onSuccess: (found) => Effect.succeed(found.map((key) => key.slice(recordPrefix.length))),
      onFailure: (e) => failOpen ? local.keys(now) : Effect.fail(error("keys", e.detail))
    })

  const store: RedisBudgetStore = {
    reserve,
    settle,
    release,
    read,
    keys,
    size: (now) => Effect.map(keys(now), (found) => found.length),
    reconcile,
    reconciled: Effect.sync(snapshot)
  }
  return store
})

/** Escapes the glob characters of a literal for `SCAN MATCH`. */
const escapeGlob = (literal: string): string => literal.replace(/[*?[\]\\]/g, (c) => `\\${c}`)
