/**
 * Schema building blocks for the options of the stateful combinators
 * (`Budget`, `RateLimit`, `ResponseCache`): each refusal message names what
 * was expected and what came, e.g. `expected a finite number ≥ 0, got NaN`.
 *
 * @since 0.1.0
 */
import { Duration, Option, Schema } from "effect"

const show = (u: unknown): string => {
  if (typeof u === "string") return JSON.stringify(u)
  if (typeof u === "number" || typeof u === "bigint" || typeof u === "boolean" || u == null) return String(u)
  if (Duration.isDuration(u)) return Duration.format(u)
  return typeof u
}

/**
 * A finite number ≥ 0.
 *
 * @since 0.1.0
 * @category schemas
 */
export const NonNegativeFinite = Schema.Number.check(
  Schema.makeFilter((n: number) => Number.isFinite(n) && n >= 0 ? undefined : `expected a finite number ≥ 0, got ${n}`)
)

/**
 * A finite number > 0.
 *
 * @since 0.1.0
 * @category schemas
 */
export const PositiveFinite = Schema.Number.check(
  Schema.makeFilter((n: number) => Number.isFinite(n) && n > 0 ? undefined : `expected a finite number > 0, got ${n}`)
)

/**
 * An integer ≥ 0.
 *
 * @since 0.1.0
 * @category schemas
 */
export const NonNegativeInt = Schema.Number.check(
  Schema.makeFilter((n: number) => Number.isSafeInteger(n) && n >= 0 ? undefined : `expected an integer ≥ 0, got ${n}`)
)

/**
 * An integer ≥ 1.
 *
 * @since 0.1.0
 * @category schemas
 */
export const PositiveInt = Schema.Number.check(
  Schema.makeFilter((n: number) => Number.isSafeInteger(n) && n >= 1 ? undefined : `expected an integer ≥ 1, got ${n}`)
)

/**
 * A fraction in (0, 1].
 *
 * @since 0.1.0
 * @category schemas
 */
export const Fraction = Schema.Number.check(
  Schema.makeFilter((n: number) => Number.isFinite(n) && n > 0 && n <= 1 ? undefined : `expected a number in (0, 1], got ${n}`)
)

/**
 * The millis of a `Duration.Input`, or `undefined` when it is not one (`NaN`
 * and unparsable strings included).
 *
 * @since 0.1.0
 * @category utils
 */
export const millisOf = (u: unknown): number | undefined => {
  if (typeof u === "number" && Number.isNaN(u)) return undefined
  if (typeof u !== "number" && typeof u !== "bigint" && typeof u !== "string" && !Duration.isDuration(u) && !Array.isArray(u)) {
    if (typeof u !== "object" || u === null) return undefined
  }
  return Option.match(Duration.fromInput(u as Duration.Input), { onNone: () => undefined, onSome: Duration.toMillis })
}

const durationWhere = (what: string, ok: (millis: number) => boolean) =>
  Schema.declare((u: unknown): u is Duration.Input => true).check(
    Schema.makeFilter((u: Duration.Input) => {
      const millis = millisOf(u)
      return millis !== undefined && ok(millis) ? undefined : `expected ${what}, got ${show(u)}`
    })
  )

/**
 * A `Duration.Input` that is finite and > 0 (a window, a TTL).
 *
 * @since 0.1.0
 * @category schemas
 */
export const PositiveDuration = durationWhere("a finite duration > 0", (ms) => Number.isFinite(ms) && ms > 0)

/**
 * A `Duration.Input` ≥ 0, possibly infinite (a longest wait).
 *
 * @since 0.1.0
 * @category schemas
 */
export const NonNegativeDuration = durationWhere("a duration ≥ 0", (ms) => ms >= 0)

/**
 * A function (an option given as code, e.g. a scope or key function).
 *
 * @since 0.1.0
 * @category schemas
 */
export const fn = <F extends (...args: ReadonlyArray<never>) => unknown>() =>
  Schema.declare((u: unknown): u is F => typeof u === "function", {
    expected: "a function"
  })
