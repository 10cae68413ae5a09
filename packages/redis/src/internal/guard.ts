/**
 * A store's guard around Redis: every command gets a deadline, a failure
 * marks the store degraded (one `StoreDegraded` event per episode, a gauge
 * `switchboard.store.degraded`), and while degraded Redis is only re-tried
 * after a backoff (doubling, capped), so calls do not each pay the deadline.
 *
 * @internal
 */
import { Cause, Clock, Effect, Metric } from "effect"
import { Events } from "@switchboard/core"

/** @internal */
export type Policy = "failOpen" | "failClosed"

/** @internal */
export type StoreName = "budget" | "breaker" | "ratelimit" | "cache"

/** Why a guarded command did not run or did not answer. */
export class Unavailable {
  readonly _tag = "Unavailable"
  readonly detail: string
  constructor(detail: string) {
    this.detail = detail
  }
}

/** @internal */
export interface Guard {
  readonly store: StoreName
  readonly policy: Policy
  /** Runs `op` under the deadline; fails with `Unavailable` (after marking degraded) when Redis does not answer. */
  readonly run: <A, E>(op: Effect.Effect<A, E>) => Effect.Effect<A, Unavailable>
  /** {@link run} without waiting for the backoff (a replay on close, which cannot wait). */
  readonly runNow: <A, E>(op: Effect.Effect<A, E>) => Effect.Effect<A, Unavailable>
  readonly isDegraded: () => boolean
  /** Called (once per recovery) after the first successful command following a degraded episode. */
  readonly onRecover: (f: () => Effect.Effect<void>) => void
}

/** @internal */
export const degradedGauge = Metric.gauge("switchboard.store.degraded", {
  description: "1 while a shared store cannot reach Redis and follows its failure policy"
})

/** A connection string or error text with any password removed. */
export const redact = (text: string): string => text.replace(/(\w+:\/\/)([^@\s/]*)@/g, "$1<redacted>@")

const describe = (error: unknown): string => {
  if (Cause.isTimeoutError(error)) return "Redis did not answer in time"
  if (typeof error === "object" && error !== null && "cause" in error) {
    const cause = (error as { readonly cause: unknown }).cause
    if (cause instanceof Error) return redact(cause.message)
    if (cause !== undefined) return redact(String(cause))
  }
  return error instanceof Error ? redact(error.message) : redact(String(error))
}

/** @internal */
export const make = (options: {
  readonly store: StoreName
  readonly policy: Policy
  readonly timeoutMs: number
  readonly backoffMs: number
  readonly maxBackoffMs: number
}): Guard => {
  const { backoffMs, maxBackoffMs, policy, store, timeoutMs } = options
  let degraded = false
  let failures = 0
  let retryAt = 0
  const recoverHooks: Array<() => Effect.Effect<void>> = []
  const gauge = Metric.withAttributes(degradedGauge, { store })

  const fail = (error: unknown, probe: boolean): Effect.Effect<never, Unavailable> =>
    Effect.suspend(() => {
      const detail = describe(error)
      const first = !degraded
      // The backoff grows with failed probes only: commands already in flight when Redis went away
      // fail together and count once.
      if (!first && !probe) return Effect.fail(new Unavailable(detail))
      degraded = true
      failures++
      return Effect.flatMap(Clock.currentTimeMillis, (now) => {
        retryAt = now + Math.min(backoffMs * 2 ** Math.min(failures - 1, 20), maxBackoffMs)
        const report = first
          ? Effect.andThen(
            Metric.update(gauge, 1),
            Events.publish(() => ({ _tag: "StoreDegraded", store, policy, detail: `redis: ${detail}` }))
          )
          : Effect.void
        return Effect.andThen(report, Effect.fail(new Unavailable(detail)))
      })
    })

  const recovered: Effect.Effect<void> = Effect.suspend(() => {
    if (!degraded) return Effect.void
    degraded = false
    failures = 0
    // Reconciliation runs in its own fiber: the call that found Redis back is not held up by it.
    return Effect.andThen(
      Metric.update(gauge, 0),
      Effect.asVoid(Effect.forkDetach(Effect.forEach(recoverHooks, (hook) => hook(), { discard: true })))
    )
  })

  const attempt = <A, E>(op: Effect.Effect<A, E>, probe: boolean): Effect.Effect<A, Unavailable> =>
    Effect.matchEffect(Effect.timeout(op, timeoutMs), {
      onFailure: (error) => fail(error, probe),
      onSuccess: (a) => degraded ? Effect.as(recovered, a) : Effect.succeed(a)
    })

  const run = <A, E>(op: Effect.Effect<A, E>): Effect.Effect<A, Unavailable> =>
    Effect.withFiber((fiber) => {
      if (!degraded) return attempt(op, false)
      const now = fiber.getRef(Clock.Clock).currentTimeMillisUnsafe()
      if (now < retryAt) return Effect.fail(new Unavailable("degraded: waiting to retry Redis"))
      // This call is the probe: push the next retry out so concurrent calls do not all probe.
      retryAt = now + Math.min(backoffMs * 2 ** Math.min(failures, 20), maxBackoffMs)
      return attempt(op, true)
    })

  return {
    store,
    policy,
    run,
    runNow: (op) => attempt(op, true),
    isDegraded: () => degraded,
    onRecover: (f) => {
      recoverHooks.push(f)
    }
  }
}
