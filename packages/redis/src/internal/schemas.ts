/**
 * Option schemas shared by the Redis layers.
 *
 * @internal
 */
import { Duration, Option, Schema } from "effect"

/** A `Duration.Input` that is finite and > 0. @internal */
export const PositiveDuration = Schema.declare((u: unknown): u is Duration.Input => true).check(
  Schema.makeFilter((u: Duration.Input) => {
    const d = Duration.fromInput(u)
    return Option.isSome(d) && Duration.isFinite(d.value) && Duration.toMillis(d.value) > 0
      ? undefined
      : `expected a finite duration > 0, got ${typeof u === "string" ? JSON.stringify(u) : String(u)}`
  })
)
