/**
 * The config-file descriptor of this package: `type: openai` and
 * `type: openai-compatible` in a `@switchboard/config` file build through it.
 *
 * @since 0.1.0
 */
import type { Descriptor } from "@switchboard/core/provider"
import { Effect, Layer, Schema } from "effect"
import * as OpenAI from "./OpenAI.ts"

const Duration = Schema.Union([Schema.DurationFromString, Schema.Duration, Schema.Finite])
const Url = Schema.String.check(Schema.makeFilter((s: string) => URL.canParse(s) || "expected an absolute URL such as https://api.openai.com/v1"))
const Key = Schema.Redacted(Schema.String)
const common = {
  headers: Schema.optional(Schema.Record(Schema.String, Schema.String)),
  timeout: Schema.optional(Duration),
  maxTokensParameter: Schema.optional(Schema.Literals(["auto", "max_tokens", "max_completion_tokens"]))
}

/**
 * `type: openai` client options.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ClientOptions = Schema.Struct({
  apiKey: Key,
  baseURL: Schema.optional(Url),
  organization: Schema.optional(Schema.String),
  project: Schema.optional(Schema.String),
  ...common
})

/**
 * `type: openai-compatible` client options; `name` defaults to the config key.
 *
 * @since 0.1.0
 * @category schemas
 */
export const CompatibleOptions = Schema.Struct({
  baseURL: Url,
  apiKey: Schema.optional(Key),
  name: Schema.optional(Schema.String),
  ...common
})

/**
 * The descriptor `@switchboard/config` loads by name.
 *
 * @since 0.1.0
 * @category descriptors
 */
export const descriptor: Descriptor.ProviderDescriptor = {
  specVersion: 1,
  package: "@switchboard/openai",
  types: ["openai", "openai-compatible"],
  clientOptions: (type) => type === "openai-compatible" ? CompatibleOptions : ClientOptions,
  build: (type, name, options) => {
    // The loader decoded these options with `clientOptions(type)` already: this decode only types them.
    const compatible = type === "openai-compatible" ? Schema.decodeUnknownSync(CompatibleOptions)(options) : undefined
    const provider = compatible === undefined ? "openai" : compatible.name ?? name
    const client = compatible === undefined
      ? OpenAI.layerClient(Schema.decodeUnknownSync(ClientOptions)(options))
      : OpenAI.compatible({ ...compatible, name: provider })
    return {
      provider,
      model: (model, settings) => OpenAI.model(model, settings.defaults, { contentFilter: settings.contentFilter }).pipe(Layer.provide(client)),
      listModels: OpenAI.listModels.pipe(
        Effect.map((models) => models.map((m) => ({ id: m.id }))),
        Effect.provide(client)
      )
    }
  }
}
