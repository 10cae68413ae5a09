/**
 * Option schemas shared by the resilience combinators (not exported from the
 * package): each refuses a bad value with a message that says what was
 * expected and what was given (`expected an integer ≥ 0, got -1`).
 *
 * @since 0.1.0
 */
import { Duration, Result, Schema } from "effect"
import * as SwitchboardConfigError from "../SwitchboardConfigError.ts"

const show = (value: unknown): string => {
  if (typeof value === "string") return JSON.stringify(value)
  if (typeof value === "function") return "a function"
  if (Duration.isDuration(value)) return Duration.format(value)
  try {
    return typeof value === "object" && value !== null ? JSON.stringify(value) : String(value)
  } catch {
    return String(value)
  }
}

/** An integer ≥ `min`. @internal */
export const IntAtLeast = (min: number) =>
  Schema.Number.check(
    Schema.makeFilter((n: number) => (Number.isInteger(n) && n >= min) || `expected an integer ≥ ${min}, got ${show(n)}`)
  )

/** A finite number in `[min, max]`. @internal */
export const FiniteBetween = (min: number, max: number) =>
  Schema.Number.check(
    Schema.makeFilter((n: number) =>
      (Number.isFinite(n) && n >= min && n <= max) || `expected a finite number in [${min}, ${max}], got ${show(n)}`
    )
  )

/** A finite number ≥ `min`. @internal */
export const FiniteAtLeast = (min: number) =>
  Schema.Number.check(
    Schema.makeFilter((n: number) => (Number.isFinite(n) && n >= min) || `expected a finite number ≥ ${min}, got ${show(n)}`)
  )

/** The shapes `Duration.Input` can take; `Duration.fromInput` then checks the content. */
const isInputShape = (input: unknown): input is Duration.Input =>
  typeof input === "string" || typeof input === "number" || typeof input === "bigint" ||
  (typeof input === "object" && input !== null)

const durationOf = (input: unknown): Duration.Duration | undefined => {
  if (!isInputShape(input)) return undefined
  const decoded = Duration.fromInput(input)
  return decoded._tag === "Some" ? decoded.value : undefined
}

/**
 * A `Duration.Input` (`"250 millis"`, a number of milliseconds, a `Duration`)
 * that is finite and ≥ 0. The decoded value is the input itself; read it with
 * {@link millisOf}. @internal
 */
export const DurationInput = Schema.declare(isInputShape, {
  expected: "a finite duration ≥ 0 such as \"250 millis\""
}).check(
  Schema.makeFilter((input: Duration.Input) => {
    const duration = durationOf(input)
    return (duration !== undefined && Duration.isFinite(duration) && Duration.toMillis(duration) >= 0) ||
      `expected a finite duration ≥ 0 such as "250 millis", got ${show(input)}`
  })
)

/** A function (a predicate or a callback option). @internal */
export const Fn = <F extends (...args: ReadonlyArray<never>) => unknown>(expected = "a function"): Schema.declare<F> =>
  Schema.declare((input: unknown): input is F => typeof input === "function", { expected })

/** The milliseconds of an input {@link DurationInput} accepted. @internal */
export const millisOf = (input: Duration.Input): number => Duration.toMillis(Duration.fromInputUnsafe(input))

/** Says what a value was, for messages. @internal */
export const describe = show

/**
 * For the synchronous constructors, which have no error channel: the value,
 * or the typed error thrown with every `path: message` in its message, so
 * what a user sees names the option. @internal
 */
export const orThrow = <A>(result: Result.Result<A, SwitchboardConfigError.SwitchboardConfigError>): A => {
  if (Result.isSuccess(result)) return result.success
  const error = result.failure
  throw new SwitchboardConfigError.SwitchboardConfigError({
    path: error.path,
    message: error.summary,
    ...(error.issues !== undefined ? { issues: error.issues } : {})
  })
}
