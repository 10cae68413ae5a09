/**
 * The shape of a config file (DESIGN §10). Blocks that belong to a
 * combinator or a provider (`retry`, `breaker`, `budget`, a provider's client
 * options, …) are decoded in a second pass by that combinator's or provider's
 * own Schema, so the rules live in one place.
 *
 * @internal
 */
import { Fallback, Router } from "@switchboard/core"
import { Schema } from "effect"

const Name = Schema.NonEmptyString
const Block = Schema.Record(Schema.String, Schema.Unknown)

export const ProviderTypes = ["openai", "openai-compatible", "anthropic", "google", "vertex", "bedrock"] as const

export const Model = Schema.Struct({
  provider: Name,
  model: Name,
  retry: Schema.optional(Block),
  breaker: Schema.optional(Block),
  hedge: Schema.optional(Block),
  defaults: Schema.optional(Block),
  /** One attempt's time bound (a Duration string like "20 seconds"). */
  timeout: Schema.optional(Schema.Union([Schema.String, Schema.Number])),
  contentFilter: Schema.optional(Schema.Literals(["fail", "return"]))
})
export type Model = typeof Model.Type

export const Candidate = Schema.Union([
  Name,
  Schema.Struct({ name: Name, weight: Schema.optional(Schema.Number) })
])
export type Candidate = typeof Candidate.Type

/** A router: Router's own options, and its candidates by model name. */
export const RouterBlock = Schema.Struct({
  ...Router.Options.fields,
  candidates: Schema.Array(Candidate)
})

export const FallbackRoute = Schema.Struct({
  fallback: Schema.Array(Name),
  midStream: Fallback.Options.fields.midStream,
  on: Schema.optional(Schema.Array(Schema.String))
})
export const RouterRoute = Schema.Struct({ router: RouterBlock })
export const ModelRoute = Schema.Struct({ model: Name })
/** A route is one of three kinds, told apart by its key (so errors point inside the right one). */
export const Route = Schema.Union([FallbackRoute, RouterRoute, ModelRoute])
export type Route = typeof Route.Type

export const Limits = Schema.Struct({
  rateLimit: Schema.optional(Block),
  budget: Schema.optional(Block)
})

export const GatewayKey = Schema.Struct({
  key: Schema.NonEmptyString,
  tenant: Name,
  routes: Schema.optional(Schema.Array(Name)),
  budget: Schema.optional(Block),
  rateLimit: Schema.optional(Block)
})

export const Gateway = Schema.Struct({
  port: Schema.optional(Schema.Int),
  host: Schema.optional(Schema.String),
  maxBodyBytes: Schema.optional(Schema.Int),
  drainTimeout: Schema.optional(Schema.Union([Schema.String, Schema.Number])),
  accessLog: Schema.optional(Schema.Boolean),
  keys: Schema.optional(Schema.Array(GatewayKey))
})

export const FileShape = Schema.Struct({
  version: Schema.Literal(1),
  providers: Schema.Record(Name, Block),
  models: Schema.Record(Name, Model),
  routes: Schema.Record(Name, Block),
  limits: Schema.optional(Limits),
  cache: Schema.optional(Block),
  state: Schema.optional(Schema.Struct({ redis: Schema.optional(Block) })),
  telemetry: Schema.optional(Block),
  prompts: Schema.optional(Schema.Array(Schema.String)),
  gateway: Schema.optional(Gateway),
  environments: Schema.optional(Schema.Record(Name, Block))
})
/** The file once each route is decoded by its kind. */
export type File = Omit<typeof FileShape.Type, "routes"> & { readonly routes: Readonly<Record<string, Route>> }
