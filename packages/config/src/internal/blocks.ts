/**
 * The Schema that decodes each block of a config file. Combinator blocks use
 * the combinators' own exported `Options` Schemas, so a rule lives in one
 * place and a file gets the same message a program would.
 *
 * @internal
 */
import { Schema } from "effect"

const Duration = Schema.Union([Schema.DurationFromString, Schema.Duration, Schema.Finite])
const Open = Schema.Record(Schema.String, Schema.Unknown)

/** Request fields a model fills in when a request leaves them out. */
export const Defaults = Schema.Struct({
  system: Schema.optional(Schema.String),
  temperature: Schema.optional(Schema.Finite.check(Schema.isBetween({ minimum: 0, maximum: 2 }))),
  topP: Schema.optional(Schema.Finite.check(Schema.isBetween({ minimum: 0, maximum: 1 }))),
  maxTokens: Schema.optional(Schema.Int.check(Schema.isGreaterThan(0))),
  stop: Schema.optional(Schema.Array(Schema.String)),
  seed: Schema.optional(Schema.Int)
})

export const blockSchemas = {
  retry: Open,
  breaker: Open,
  hedge: Open,
  latency: Open,
  rateLimit: Open,
  budget: Open,
  cache: Open,
  redis: Open,
  telemetry: Open,
  defaults: Defaults,
  duration: Duration
} satisfies Record<string, Schema.Top & { readonly DecodingServices: never }>
