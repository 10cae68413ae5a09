/**
 * Config files that build whole stacks: providers, models with their own
 * resilience, routes (fallback chains or routers), limits, cache, state,
 * telemetry, prompts and gateway keys, in YAML or JSON, with environment
 * overlays and `${VAR}` expansion (DESIGN §10).
 *
 * Every block is decoded by the Schema of the module it configures, so a
 * file gets the same checks a program does; every problem is reported at
 * once, with its path and line; secrets become `Redacted` and never appear
 * in an error.
 *
 * @example
 * ```ts
 * import { SwitchboardConfig } from "@switchboard/config"
 * import { Effect } from "effect"
 *
 * const program = Effect.gen(function*() {
 *   const config = yield* SwitchboardConfig.load("switchboard.yaml", { environment: "dev" })
 *   return Object.keys(config.raw.routes)
 * })
 * ```
 *
 * @since 0.1.0
 */
import type { SwitchboardConfigError } from "@switchboard/core"
import type { Effect } from "effect"
import * as Load from "./internal/load.ts"

/**
 * A loaded, checked config file.
 *
 * @since 0.1.0
 * @category models
 */
export type SwitchboardConfig = Load.Loaded

/**
 * Options of {@link load}: the environment overlay (default
 * `SWITCHBOARD_ENV`) and the variables `${VAR}` reads (default
 * `process.env`).
 *
 * @since 0.1.0
 * @category models
 */
export type LoadOptions = Load.LoadOptions

/**
 * Reads, expands and checks a config file. Fails with one
 * `SwitchboardConfigError` carrying every problem in `issues`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const load: (
  path: string,
  options?: LoadOptions
) => Effect.Effect<SwitchboardConfig, SwitchboardConfigError.SwitchboardConfigError> = Load.load
