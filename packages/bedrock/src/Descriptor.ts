/**
 * The config-file descriptor of this package: `type: bedrock` in a
 * `@switchboard/config` file builds through it.
 *
 * @since 0.1.0
 */
import type { Descriptor } from "@switchboard/core/provider"
import { Effect, Layer, Schema } from "effect"
import * as Bedrock from "./Bedrock.ts"

const Duration = Schema.Union([Schema.DurationFromString, Schema.Duration, Schema.Finite])
const Url = Schema.String.check(Schema.makeFilter((s: string) => URL.canParse(s) || "expected an absolute URL"))

/**
 * `type: bedrock` client options: a region, and static credentials, an API
 * key, or neither (the AWS SDK's default credential chain).
 *
 * @since 0.1.0
 * @category schemas
 */
export const ClientOptions = Schema.Struct({
  region: Schema.NonEmptyString,
  credentials: Schema.optional(Schema.Struct({
    accessKeyId: Schema.NonEmptyString,
    secretAccessKey: Schema.Redacted(Schema.String),
    sessionToken: Schema.optional(Schema.Redacted(Schema.String))
  })),
  apiKey: Schema.optional(Schema.Redacted(Schema.String)),
  endpoint: Schema.optional(Url),
  controlPlaneEndpoint: Schema.optional(Url),
  timeout: Schema.optional(Duration),
  httpVersion: Schema.optional(Schema.Literals(["1.1", "2"])),
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
  package: "@switchboard/bedrock",
  types: ["bedrock"],
  clientOptions: () => ClientOptions,
  build: (_type, _name, options) => {
    const { name, ...rest } = Schema.decodeUnknownSync(ClientOptions)(options)
    const provider = name ?? "bedrock"
    const client = Bedrock.layerClient({ ...rest, provider })
    return {
      provider,
      model: (model, settings) => Bedrock.model(model, settings.defaults, { contentFilter: settings.contentFilter }).pipe(Layer.provide(client)),
      listModels: Bedrock.listModels.pipe(Effect.map((models) => models.map((m) => ({ id: m.id }))), Effect.provide(client))
    }
  }
}
