/**
 * The Schema that decodes each block of a config file. Combinator blocks use
 * the combinators' own exported `Options` Schemas, so a rule lives in one
 * place and a file gets the same message a program would. Where a program
 * passes a function (a budget's `scope`, a limiter's `key`) the file names
 * one of the common choices instead.
 *
 * @internal
 */
import { Budget, CircuitBreaker, Hedge, RateLimit, ResponseCache, Retry, Router, Telemetry } from "@switchboard/core"
import { Schema } from "effect"

const Duration = Schema.Union([Schema.DurationFromString, Schema.Duration, Schema.Finite])

/** Request fields a model fills in when a request leaves them out. */
export const Defaults = Schema.Struct({
  system: Schema.optional(Schema.String),
  temperature: Schema.optional(Schema.Finite.check(Schema.isBetween({ minimum: 0, maximum: 2 }))),
  topP: Schema.optional(Schema.Finite.check(Schema.isBetween({ minimum: 0, maximum: 1 }))),
  maxTokens: Schema.optional(Schema.Int.check(Schema.isGreaterThan(0))),
  stop: Schema.optional(Schema.Array(Schema.String)),
  seed: Schema.optional(Schema.Int)
})

/** Who a budget or a limit counts: everyone together, or each tenant (`metadata.tenant`) apart. */
export const Scope = Schema.Literals(["global", "tenant"])

/** `limits.budget` and a gateway key's `budget`: Budget's options, `scope` named, `onSoft` a route. */
export const BudgetBlock = Schema.Struct({
  ...Budget.Options.fields,
  scope: Schema.optional(Scope),
  onSoft: Schema.optional(Schema.String)
})

/** `limits.rateLimit`: RateLimit's options; `key: tenant` gives each tenant its own limit. */
export const RateLimitBlock = RateLimit.Options

/** `models.x.hedge`: when to start the second attempt (the backup is the same model). */
export const HedgeBlock = Schema.Struct({ after: Hedge.Options.fields.after })

/** A router's options (its `candidates` are checked against the models). */
export const RouterOptions = Router.Options

const Url = Schema.String.check(Schema.makeFilter((s: string) => s === "" || URL.canParse(s) || "expected a URL"))

/**
 * `telemetry:`: what `@switchboard/otel` exports (`serviceName`, `otlp`,
 * `prometheus`) and what every route's call span records (`captureContent`,
 * `maxContentLength`). An empty `otlp.endpoint` (`"${OTEL_EXPORTER_OTLP_ENDPOINT:-}"`
 * with the variable unset) turns OTLP off.
 */
export const TelemetryBlock = Schema.Struct({
  serviceName: Schema.optional(Schema.NonEmptyString),
  otlp: Schema.optional(Schema.Struct({
    endpoint: Url,
    headers: Schema.optional(Schema.Record(Schema.String, Schema.Unknown))
  })),
  prometheus: Schema.optional(Schema.Union([
    Schema.Boolean,
    Schema.Struct({ port: Schema.optional(Schema.Int), host: Schema.optional(Schema.String) })
  ])),
  captureContent: Telemetry.Options.fields.captureContent,
  maxContentLength: Telemetry.Options.fields.maxContentLength
})

export const blockSchemas = {
  retry: Retry.Options,
  breaker: CircuitBreaker.Options,
  hedge: HedgeBlock,
  router: RouterOptions,
  rateLimit: RateLimitBlock,
  budget: BudgetBlock,
  cache: ResponseCache.Options,
  telemetry: TelemetryBlock,
  defaults: Defaults,
  duration: Duration
} satisfies Record<string, Schema.Top & { readonly DecodingServices: never }>
