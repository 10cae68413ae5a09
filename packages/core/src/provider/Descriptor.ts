/**
 * What a provider package exports so a config file can build it by name:
 * the `type`s it serves (`openai`, `openai-compatible`, …), the Schema of
 * its client options (so the config loader reports a bad option with its
 * path, with no second copy of the rules), and how to build a model from
 * decoded options. `@switchboard/config` loads `@switchboard/<package>` with
 * a dynamic import and reads its `descriptor` export: adding a provider
 * package needs no change to the config package.
 *
 * @since 0.1.0
 */
import type { Effect, Layer, Schema } from "effect"
import type { LLM } from "../LLM.ts"
import type { LlmError } from "../LlmError.ts"
import type { SwitchboardConfigError } from "../SwitchboardConfigError.ts"
import type { Defaults } from "../LlmRequest.ts"

/**
 * A model the provider's API lists.
 *
 * @since 0.1.0
 * @category models
 */
export interface ListedModel {
  readonly id: string
  readonly contextWindow?: number | undefined
  readonly maxOutput?: number | undefined
}

/**
 * How a model endpoint is set up beyond its name.
 *
 * @since 0.1.0
 * @category models
 */
export interface ModelSettings {
  readonly defaults?: Defaults | undefined
  /** What a content-filter finish becomes: a `ContentFiltered` failure (default) or a normal response. */
  readonly contentFilter?: "fail" | "return" | undefined
}

/**
 * One configured provider (a client), built from decoded options.
 *
 * @since 0.1.0
 * @category models
 */
export interface BuiltProvider {
  /** The provider name reported in responses, errors and prices. */
  readonly provider: string
  /** The model's layer; fails at build with `SwitchboardConfigError` when the client's options cannot work. */
  readonly model: (model: string, settings: ModelSettings) => Layer.Layer<LLM, SwitchboardConfigError>
  readonly listModels: Effect.Effect<ReadonlyArray<ListedModel>, LlmError | SwitchboardConfigError>
}

/**
 * The descriptor a provider package exports as `descriptor`.
 *
 * @since 0.1.0
 * @category models
 */
export interface ProviderDescriptor {
  /** Bumped when this interface changes incompatibly. */
  readonly specVersion: 1
  /** The npm package, for messages. */
  readonly package: string
  /** The config `type`s this package serves. */
  readonly types: ReadonlyArray<string>
  /** The client options of a type (without `type`), as a Schema that decodes the file's values. */
  readonly clientOptions: (type: string) => Schema.Decoder<unknown>
  /** Builds the client for `type` from options `clientOptions(type)` decoded; `name` is the config's key. */
  readonly build: (type: string, name: string, options: unknown) => BuiltProvider
}
