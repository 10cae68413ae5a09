/**
 * The simulator's configuration: which virtual providers to mount, with which
 * protocol, models, latency, rate limits, API keys and fault plans.
 *
 * Configs are plain objects (or YAML / JSON files) checked with
 * `effect/Schema`; a bad config fails with {@link SimConfigError} whose message
 * names the path of the bad field (`at ["providers"]["openai"]["models"][0]["contextWindow"]`).
 *
 * @since 0.1.0
 */
import { Effect, Exit, Schema } from "effect"
import * as Fs from "node:fs/promises"
import * as Yaml from "yaml"

const NonNegative = Schema.Number.check(Schema.isGreaterThanOrEqualTo(0))
const NonNegativeInt = Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))
const PositiveInt = Schema.Int.check(Schema.isGreaterThan(0))

const faultFields = {
  /** Answer with this HTTP status and the protocol's real error body for it. */
  status: Schema.optional(Schema.Int.check(Schema.isBetween({ minimum: 400, maximum: 599 }))),
  /** Override the error message. */
  message: Schema.optional(Schema.String),
  /** `retry-after` in seconds (Gemini: RetryInfo `retryDelay`). */
  retryAfter: Schema.optional(NonNegative),
  /** `retry-after-ms` (OpenAI). */
  retryAfterMs: Schema.optional(NonNegative),
  /** Hold the response this long before sending headers. */
  stallMs: Schema.optional(NonNegativeInt),
  /** Pause a stream this long after `stallAfter` events. */
  midStreamStallMs: Schema.optional(NonNegativeInt),
  /** Events sent before a mid-stream stall (default 1). */
  stallAfter: Schema.optional(NonNegativeInt),
  /** Destroy the socket after this many stream events (non-stream: after half the body). */
  cutAfter: Schema.optional(NonNegativeInt),
  /** Send the protocol's in-band stream error after this many events, then end the stream. */
  streamErrorAfter: Schema.optional(NonNegativeInt),
  /** Send this many events, then half of the next JSON line, then close. */
  truncateAfter: Schema.optional(NonNegativeInt),
  /** Answer 200 with a body (or one stream event) that is not valid JSON. */
  malformed: Schema.optional(Schema.Boolean),
  /** Finish with the protocol's content-filter reason. */
  contentFilter: Schema.optional(Schema.Boolean),
  /** Serve this fixture file (relative to the fixtures directory) as recorded. */
  replay: Schema.optional(Schema.String)
}

/**
 * One fault to inject into one response. All fields are optional and combine
 * (e.g. `{ stallMs: 500, status: 503 }`). An empty fault means "answer normally".
 *
 * @since 0.1.0
 * @category schemas
 */
export const Fault = Schema.Struct(faultFields)

/**
 * @since 0.1.0
 * @category models
 */
export type Fault = typeof Fault.Type

/**
 * A step of a scripted sequence: a fault applied to the next `times` calls (default 1).
 * `{ ok: true }` lets calls through unchanged.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ScriptStep = Schema.Struct({
  ...faultFields,
  times: Schema.optional(PositiveInt),
  ok: Schema.optional(Schema.Boolean)
})

/**
 * @since 0.1.0
 * @category models
 */
export type ScriptStep = typeof ScriptStep.Type

/**
 * A fault drawn at random with probability `rate` (0..1) from the plan's seeded PRNG.
 *
 * @since 0.1.0
 * @category schemas
 */
export const MixEntry = Schema.Struct({
  ...faultFields,
  rate: Schema.Number.check(Schema.isBetween({ minimum: 0, maximum: 1 }))
})

/**
 * @since 0.1.0
 * @category models
 */
export type MixEntry = typeof MixEntry.Type

/**
 * An outage window: from `startMs` after the plan was set (default 0) for
 * `durationMs`, every call gets the fault (default `{ status: 503 }`).
 *
 * @since 0.1.0
 * @category schemas
 */
export const Outage = Schema.Struct({
  ...faultFields,
  startMs: Schema.optional(NonNegativeInt),
  durationMs: NonNegativeInt
})

/**
 * @since 0.1.0
 * @category models
 */
export type Outage = typeof Outage.Type

const planFields = {
  /** Seed of the PRNG used by `mix` (default 1). */
  seed: Schema.optional(Schema.Int),
  /** Scripted sequence consumed in order; after it runs out calls pass through. */
  script: Schema.optional(Schema.Array(ScriptStep)),
  /** Random error mix. */
  mix: Schema.optional(Schema.Array(MixEntry)),
  /** Outage windows. */
  outages: Schema.optional(Schema.Array(Outage))
}

/**
 * A fault plan for one model (same as {@link FaultPlan} without `models`).
 *
 * @since 0.1.0
 * @category schemas
 */
export const ModelFaultPlan = Schema.Struct(planFields)

/**
 * @since 0.1.0
 * @category models
 */
export type ModelFaultPlan = typeof ModelFaultPlan.Type

/**
 * A provider's fault plan. Precedence per call: the `x-sim-fault` header, then
 * the model's script, the provider's script, outages (model, then provider),
 * then the random mix (model, then provider).
 *
 * @since 0.1.0
 * @category schemas
 */
export const FaultPlan = Schema.Struct({
  ...planFields,
  /** Plans that apply only to calls for one model id. */
  models: Schema.optional(Schema.Record(Schema.String, ModelFaultPlan))
})

/**
 * @since 0.1.0
 * @category models
 */
export type FaultPlan = typeof FaultPlan.Type

/**
 * A model a virtual provider serves.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Model = Schema.Struct({
  id: Schema.String.check(Schema.isNonEmpty()),
  /** Context window in tokens; longer prompts get the protocol's context-length error. */
  contextWindow: PositiveInt,
  /** Largest `max_tokens` accepted, and the reply cap when none is given. */
  maxOutput: PositiveInt,
  /** USD per million tokens (informational; listed by `GET /_sim/config`). */
  price: Schema.optional(Schema.Struct({ input: NonNegative, output: NonNegative })),
  displayName: Schema.optional(Schema.String)
})

/**
 * @since 0.1.0
 * @category models
 */
export type Model = typeof Model.Type

/**
 * The wire protocols the simulator speaks.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Protocol = Schema.Literals(["openai", "anthropic", "gemini", "bedrock"])

/**
 * @since 0.1.0
 * @category models
 */
export type Protocol = typeof Protocol.Type

/**
 * One virtual provider, mounted at `/{name}`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Provider = Schema.Struct({
  protocol: Protocol,
  models: Schema.Array(Model).check(Schema.isMinLength(1)),
  /** Time to first token and per-token delay in ms (both default 0). */
  latency: Schema.optional(Schema.Struct({
    ttftMs: Schema.optional(NonNegative),
    perTokenMs: Schema.optional(NonNegative)
  })),
  /** Per-minute limits; when exceeded calls get real 429s. Unset means unlimited. */
  rateLimits: Schema.optional(Schema.Struct({
    requestsPerMinute: Schema.optional(PositiveInt),
    tokensPerMinute: Schema.optional(PositiveInt)
  })),
  /** When set, calls must carry one of these keys (Bedrock: the SigV4 access key id or a bearer key). */
  apiKeys: Schema.optional(Schema.Array(Schema.String)),
  faults: Schema.optional(FaultPlan)
})

/**
 * @since 0.1.0
 * @category models
 */
export type Provider = typeof Provider.Type

/**
 * The whole simulator configuration.
 *
 * @since 0.1.0
 * @category schemas
 */
export const SimConfig = Schema.Struct({
  /** Listen address (default `127.0.0.1`). */
  host: Schema.optional(Schema.String),
  /** Listen port (default 0: a free port). */
  port: Schema.optional(Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 65535 }))),
  /** Where replay paths are resolved (default: the package's `fixtures/`). */
  fixturesDir: Schema.optional(Schema.String),
  providers: Schema.Record(Schema.String, Provider)
})

/**
 * @since 0.1.0
 * @category models
 */
export type SimConfig = typeof SimConfig.Type

/**
 * A config (object or file) was invalid; `message` names the path of the bad field.
 *
 * @since 0.1.0
 * @category errors
 */
export class SimConfigError extends Schema.TaggedError<SimConfigError>()("SimConfigError", {
  message: Schema.String,
  path: Schema.optional(Schema.String)
}) {}

const providerName = /^[A-Za-z0-9][A-Za-z0-9._-]*$/

/**
 * Checks an unknown value against {@link SimConfig}: no excess keys, provider
 * names are URL-safe, model ids are unique per provider.
 *
 * @since 0.1.0
 * @category decoding
 */
export const decodeConfig = (input: unknown): Effect.Effect<SimConfig, SimConfigError> =>
  Effect.suspend(() => {
    const exit = Schema.decodeUnknownExit(SimConfig, { onExcessProperty: "error" })(input)
    if (Exit.isFailure(exit)) {
      const reason = exit.cause.reasons[0]
      const message = reason !== undefined && reason._tag === "Fail" ? String(reason.error.message) : "invalid config"
      return Effect.fail(new SimConfigError({ message: `Invalid sim config: ${message}` }))
    }
    const config = exit.value
    for (const [name, p] of Object.entries(config.providers)) {
      if (!providerName.test(name)) {
        return Effect.fail(
          new SimConfigError({
            message: `Invalid sim config: provider name must match ${providerName} (letters, digits, . _ -)\n  at ["providers"]["${name}"]`,
            path: `providers.${name}`
          })
        )
      }
      const seen = new Set<string>()
      for (const [i, m] of p.models.entries()) {
        if (seen.has(m.id)) {
          return Effect.fail(
            new SimConfigError({
              message: `Invalid sim config: duplicate model id "${m.id}"\n  at ["providers"]["${name}"]["models"][${i}]["id"]`,
              path: `providers.${name}.models.${i}.id`
            })
          )
        }
        seen.add(m.id)
      }
    }
    return Effect.succeed(config)
  })

/**
 * Decodes a fault plan (used by the control API and `setFaults`).
 *
 * @since 0.1.0
 * @category decoding
 */
export const decodeFaultPlan = (input: unknown): Effect.Effect<FaultPlan, SimConfigError> =>
  Effect.suspend(() => {
    const exit = Schema.decodeUnknownExit(FaultPlan, { onExcessProperty: "error" })(input)
    if (Exit.isSuccess(exit)) return Effect.succeed(exit.value)
    const reason = exit.cause.reasons[0]
    const message = reason !== undefined && reason._tag === "Fail" ? String(reason.error.message) : "invalid plan"
    return Effect.fail(new SimConfigError({ message: `Invalid fault plan: ${message}` }))
  })

/**
 * Reads a YAML (`.yaml`/`.yml`) or JSON config file and decodes it.
 *
 * @since 0.1.0
 * @category decoding
 */
export const loadConfigFile = (path: string): Effect.Effect<SimConfig, SimConfigError> =>
  Effect.tryPromise({
    try: () => Fs.readFile(path, "utf8"),
    catch: (cause) => new SimConfigError({ message: `Cannot read sim config file ${path}: ${String(cause)}` })
  }).pipe(
    Effect.flatMap((text) =>
      Effect.try({
        try: () => (/\.ya?ml$/i.test(path) ? Yaml.parse(text) : JSON.parse(text)) as unknown,
        catch: (cause) => new SimConfigError({ message: `Cannot parse sim config file ${path}: ${String(cause)}` })
      })
    ),
    Effect.flatMap(decodeConfig),
    Effect.mapError((e) =>
      e.message.includes(path) ? e : new SimConfigError({ message: `${path}: ${e.message}`, path: e.path })
    )
  )

/**
 * A ready-made config: providers `openai`, `anthropic`, `gemini` and `bedrock`
 * with a few real model ids and their real context windows, no latency, no
 * rate limits, no keys and no faults.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultConfig: SimConfig = {
  providers: {
    openai: {
      protocol: "openai",
      models: [
        { id: "gpt-4o-mini", contextWindow: 128_000, maxOutput: 16_384, price: { input: 0.15, output: 0.6 } },
        { id: "gpt-4o", contextWindow: 128_000, maxOutput: 16_384, price: { input: 2.5, output: 10 } },
        { id: "gpt-4.1-nano", contextWindow: 1_047_576, maxOutput: 32_768, price: { input: 0.1, output: 0.4 } },
        { id: "gpt-4.1", contextWindow: 1_047_576, maxOutput: 32_768, price: { input: 2, output: 8 } }
      ]
    },
    anthropic: {
      protocol: "anthropic",
      models: [
        { id: "claude-haiku-4-5", contextWindow: 200_000, maxOutput: 64_000, price: { input: 1, output: 5 } },
        { id: "claude-sonnet-4-5", contextWindow: 200_000, maxOutput: 64_000, price: { input: 3, output: 15 } },
        { id: "claude-opus-4-1", contextWindow: 200_000, maxOutput: 32_000, price: { input: 15, output: 75 } }
      ]
    },
    gemini: {
      protocol: "gemini",
      models: [
        { id: "gemini-2.5-flash", contextWindow: 1_048_576, maxOutput: 65_536, price: { input: 0.3, output: 2.5 } },
        { id: "gemini-2.5-pro", contextWindow: 1_048_576, maxOutput: 65_536, price: { input: 1.25, output: 10 } },
        { id: "gemini-2.0-flash", contextWindow: 1_048_576, maxOutput: 8_192, price: { input: 0.1, output: 0.4 } }
      ]
    },
    bedrock: {
      protocol: "bedrock",
      models: [
        { id: "us.amazon.nova-micro-v1:0", contextWindow: 128_000, maxOutput: 10_000, price: { input: 0.035, output: 0.14 } },
        { id: "anthropic.claude-3-5-haiku-20241022-v1:0", contextWindow: 200_000, maxOutput: 8_192, price: { input: 0.8, output: 4 } },
        { id: "us.anthropic.claude-sonnet-4-20250514-v1:0", contextWindow: 200_000, maxOutput: 64_000, price: { input: 3, output: 15 } }
      ]
    }
  }
}
