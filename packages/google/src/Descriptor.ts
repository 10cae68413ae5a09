/**
 * The config-file descriptor of this package: `type: google` (the Gemini
 * API) and `type: vertex` (Vertex AI) in a `@switchboard/config` file build
 * through it.
 *
 * @since 0.1.0
 */
import type { SwitchboardConfigError } from "@switchboard/core"
import type { Descriptor } from "@switchboard/core/provider"
import { Effect, Layer, Schema } from "effect"
import * as Google from "./Google.ts"

const Duration = Schema.Union([Schema.DurationFromString, Schema.Duration, Schema.Finite])
const Url = Schema.String.check(Schema.makeFilter((s: string) => URL.canParse(s) || "expected an absolute URL"))
const common = {
  baseURL: Schema.optional(Url),
  apiVersion: Schema.optional(Schema.String),
  timeout: Schema.optional(Duration),
  headers: Schema.optional(Schema.Record(Schema.String, Schema.String)),
  name: Schema.optional(Schema.String)
}

/**
 * `type: google` client options (the Gemini API).
 *
 * @since 0.1.0
 * @category schemas
 */
export const ClientOptions = Schema.Struct({ apiKey: Schema.Redacted(Schema.String), ...common })

/**
 * `type: vertex` client options: a project and location, and either an
 * `accessToken` or the machine's application default credentials.
 *
 * @since 0.1.0
 * @category schemas
 */
export const VertexOptions = Schema.Struct({
  project: Schema.NonEmptyString,
  location: Schema.NonEmptyString,
  accessToken: Schema.optional(Schema.Redacted(Schema.String)),
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
  package: "@switchboard/google",
  types: ["google", "vertex"],
  clientOptions: (type) => type === "vertex" ? VertexOptions : ClientOptions,
  build: (type, _name, options) => {
    // The loader decoded these options with `clientOptions(type)` already: this decode only types them.
    const built = (client: Layer.Layer<Google.GoogleClient, SwitchboardConfigError.SwitchboardConfigError>, name: string | undefined) => {
      // Vertex serves the same Gemini models: they price as "google" in the catalog unless named otherwise.
      const provider = name ?? "google"
      return {
        provider,
        model: (model: string, settings: Descriptor.ModelSettings) =>
          Google.model(model, settings.defaults, { contentFilter: settings.contentFilter }).pipe(Layer.provide(client)),
        listModels: Google.listModels.pipe(Effect.map((models) => models.map((m) => ({ id: m.id }))), Effect.provide(client))
      }
    }
    if (type === "vertex") {
      const vertex = Schema.decodeUnknownSync(VertexOptions)(options)
      return built(Google.layerVertex(vertex), vertex.name)
    }
    const gemini = Schema.decodeUnknownSync(ClientOptions)(options)
    return built(Google.layerClient(gemini), gemini.name)
  }
}
