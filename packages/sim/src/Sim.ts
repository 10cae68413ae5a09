/**
 * `Sim` runs the provider simulator: one HTTP server on loopback that mounts
 * several virtual providers, each speaking a real wire protocol (OpenAI,
 * Anthropic, Gemini, Bedrock) under `/{name}`, so the official SDKs can be
 * pointed at it. Use {@link layer} in Effect programs and tests,
 * {@link start} inside a scope, or {@link startPromise} from plain Node code.
 *
 * SDK base URLs for a provider named `name`:
 * - openai: `baseURL: ${url}/${name}/v1`
 * - anthropic: `baseURL: ${url}/${name}`
 * - gemini: `httpOptions: { baseUrl: ${url}/${name} }`
 * - bedrock: `endpoint: ${url}/${name}`
 *
 * @since 0.1.0
 */
import { Context, Effect, Layer } from "effect"
import type { Scope } from "effect"
import * as Config from "./Config.ts"
import { listen, type Running, type StatsSnapshot } from "./internal/server.ts"

export {
  /**
   * @since 0.1.0
   * @category config
   */
  decodeConfig,
  /**
   * @since 0.1.0
   * @category config
   */
  defaultConfig,
  /**
   * @since 0.1.0
   * @category config
   */
  loadConfigFile,
  /**
   * @since 0.1.0
   * @category errors
   */
  SimConfigError
} from "./Config.ts"

/**
 * Stats per provider and model: requests seen and counts by outcome (`ok`,
 * an HTTP status such as `"429"`, `cut`, `truncated`, `stall`, `malformed`,
 * `stream-error`, `content-filter`, `replay`, `aborted`).
 *
 * @since 0.1.0
 * @category models
 */
export type Stats = StatsSnapshot

/**
 * A running simulator.
 *
 * @since 0.1.0
 * @category models
 */
export interface SimHandle {
  /** Base URL, e.g. `http://127.0.0.1:43121`. */
  readonly url: string
  readonly port: number
  /** `${url}/${name}`: the prefix a provider is mounted at. */
  readonly providerUrl: (name: string) => string
  readonly stats: Effect.Effect<Stats>
  /** Replaces (default) or adds to a provider's fault plan. */
  readonly setFaults: (
    name: string,
    plan: Config.FaultPlan,
    options?: { readonly mode?: "replace" | "add" | undefined } | undefined
  ) => Effect.Effect<void, Config.SimConfigError>
  readonly clearFaults: (name: string) => Effect.Effect<void, Config.SimConfigError>
  /** Zeroes stats, rate-limit windows and the simulated prompt cache. */
  readonly reset: Effect.Effect<void>
}

/**
 * The simulator as a service.
 *
 * @since 0.1.0
 * @category services
 */
export class SimServer extends Context.Service<SimServer, SimHandle>()("@switchboard/sim/SimServer") {}

const toHandle = (r: Running): SimHandle => ({
  url: r.url,
  port: r.port,
  providerUrl: (name) => `${r.url}/${name}`,
  stats: Effect.sync(r.stats),
  setFaults: (name, plan, options) =>
    Config.decodeFaultPlan(plan).pipe(
      Effect.flatMap((p) =>
        Effect.try({
          try: () => r.setFaults(name, p, options?.mode ?? "replace"),
          catch: (e) => new Config.SimConfigError({ message: (e as Error).message })
        })
      )
    ),
  clearFaults: (name) =>
    Effect.try({
      try: () => r.clearFaults(name),
      catch: (e) => new Config.SimConfigError({ message: (e as Error).message })
    }),
  reset: Effect.sync(r.reset)
})

/**
 * A config input: a {@link Config.SimConfig}-shaped object (checked at start).
 *
 * @since 0.1.0
 * @category models
 */
export type SimConfigInput = Config.SimConfig | unknown

/**
 * Starts the simulator in the current scope (closed with the scope). Listens
 * on `127.0.0.1` and a free port unless the config says otherwise.
 *
 * @since 0.1.0
 * @category constructors
 */
export const start = (config: SimConfigInput = Config.defaultConfig): Effect.Effect<SimHandle, Config.SimConfigError, Scope.Scope> =>
  Effect.gen(function*() {
    const decoded = yield* Config.decodeConfig(config)
    const running = yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: () => listen(decoded),
        catch: (e) => new Config.SimConfigError({ message: `Cannot start sim: ${(e as Error).message}` })
      }),
      (r) => Effect.promise(() => r.close())
    )
    return toHandle(running)
  })

/**
 * `start` under its usual name.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = start

/**
 * A layer providing {@link SimServer}; the server closes when the layer's scope closes.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (config: SimConfigInput = Config.defaultConfig): Layer.Layer<SimServer, Config.SimConfigError> =>
  Layer.effect(SimServer, Effect.map(start(config), SimServer.of))

/**
 * A running simulator for non-Effect code.
 *
 * @since 0.1.0
 * @category models
 */
export interface SimPromiseHandle {
  readonly url: string
  readonly port: number
  readonly providerUrl: (name: string) => string
  readonly stats: () => Stats
  readonly setFaults: (name: string, plan: Config.FaultPlan, options?: { readonly mode?: "replace" | "add" | undefined } | undefined) => Promise<void>
  readonly clearFaults: (name: string) => void
  readonly reset: () => void
  readonly close: () => Promise<void>
}

/**
 * Starts the simulator and resolves once it listens; rejects with a
 * {@link Config.SimConfigError} for a bad config. Call `close()` when done.
 *
 * @since 0.1.0
 * @category constructors
 */
export const startPromise = async (config: SimConfigInput = Config.defaultConfig): Promise<SimPromiseHandle> => {
  const decoded = await Effect.runPromise(Config.decodeConfig(config))
  const r = await listen(decoded)
  return {
    url: r.url,
    port: r.port,
    providerUrl: (name) => `${r.url}/${name}`,
    stats: r.stats,
    setFaults: (name, plan, options) =>
      Effect.runPromise(Config.decodeFaultPlan(plan)).then((p) => r.setFaults(name, p, options?.mode ?? "replace")),
    clearFaults: r.clearFaults,
    reset: r.reset,
    close: r.close
  }
}
