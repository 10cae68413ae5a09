/**
 * Option schemas shared by the routing modules (not exported from the
 * package).
 *
 * @internal
 */
import { Duration, Option, Schema } from "effect"

const positiveDuration = (u: unknown): u is Duration.Input => {
  if (u === undefined || u === null) return false
  const parsed = Duration.fromInput(u as Duration.Input)
  return Option.isSome(parsed) && Duration.toMillis(parsed.value) > 0
}

/** A positive `Duration.Input` ("250 millis", a number of ms, a `Duration`). @internal */
export const DurationInput = Schema.declare(positiveDuration, {
  expected: "a positive duration (e.g. \"30 seconds\" or a number of milliseconds)"
})

/** An integer ≥ 1. @internal */
export const PositiveInt = Schema.Int.check(Schema.isGreaterThanOrEqualTo(1))

/** A number in [0, 1]. @internal */
export const Fraction = Schema.Finite.check(Schema.isBetween({ minimum: 0, maximum: 1 }))
