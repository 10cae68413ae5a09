/**
 * The config-file descriptor of this package: `type: anthropic` in a
 * `@switchboard/config` file builds through it.
 *
 * @since 0.1.0
 */
import type { Descriptor } from "@switchboard/core/provider"
import { Effect, Layer, Schema } from "effect"
import * as Anthropic from "./Anthropic.ts"

const Duration = Schema.Union([Schema.DurationFromString, Schema.Duration, Schema.Finite])
const Url = Schema.String.check(Schema.makeFilter((s: string) => URL.canParse(s) || "expected an absolute URL such as https://api.anthropic.com"))

/**
 * `type: anthropic` client options.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ClientOptions = Schema.Struct({
  apiKey: Schema.Redacted(Schema.String),
  baseURL: Schema.optional(Url),
  timeout: Schema.optional(Duration),
  headers: Schema.optional(Schema.Record(Schema.String, Schema.String)),
  name: Schema.optional(Schema.String)
})

/**
 * The descriptor `@switchboard/config` loads by name.
 *
 * @since 0.1.0
 * @category descriptors
 */
export const descriptor: Descriptor.ProviderDescriptor = {
  specVersion: 1,
  package: "@switchboard/anthropic",
  types: ["anthropic"],
  clientOptions: () => ClientOptions,
  build: (_type, _name, options) => {
    const { name, ...rest } = Schema.decodeUnknownSync(ClientOptions)(options)
    const provider = name ?? "anthropic"
    const client = Anthropic.layerClient({ ...rest, provider })
    return {
      provider,
      model: (model, settings) => Anthropic.model(model, settings.defaults, { contentFilter: settings.contentFilter }).pipe(Layer.provide(client)),
      listModels: Anthropic.listModels.pipe(Effect.map((models) => models.map((m) => ({ id: m.id }))), Effect.provide(client))
    }
  }
}
