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
 * - {@link load}: read and check a file.
 * - {@link layerFromFile}: one route as the `LLM` (`"default"` unless named).
 * - {@link layerRoutes}: every route by name (what the gateway serves).
 * - `watch: true` reloads on change: a valid file is swapped in atomically
 *   (calls in flight finish on the old stack; breaker and budget state carry
 *   over where the same model or scope remains; a provider whose client
 *   settings changed starts with a closed breaker), an invalid one keeps the
 *   old stack and publishes `ConfigReloaded { ok: false, error }`.
 *
 * @example
 * ```ts
 * import { SwitchboardConfig } from "@switchboard/config"
 * import { Llm } from "@switchboard/core"
 * import { Effect } from "effect"
 *
 * const program = Llm.generateText("Hello").pipe(
 *   Effect.provide(SwitchboardConfig.layerFromFile("switchboard.yaml", { environment: "dev" }))
 * )
 * ```
 *
 * @since 0.1.0
 */
import { BreakerStore, BudgetStore, Events, LLM, PromptRegistry, SwitchboardConfigError } from "@switchboard/core"
import { parse as parseYaml } from "yaml"
import { Context, Effect, Exit, Layer, Scope } from "effect"
import * as Build from "./internal/build.ts"
import * as Load from "./internal/load.ts"
import * as Reload from "./internal/reload.ts"

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

/**
 * Options of {@link layerRoutes} and {@link layerFromFile}.
 *
 * @since 0.1.0
 * @category models
 */
export interface LayerOptions extends LoadOptions {
  /** Reload when the file changes (default false). */
  readonly watch?: boolean | undefined
}

/**
 * Every route of a config file, by name, and the file they came from.
 *
 * @since 0.1.0
 * @category services
 */
export class Routes extends Context.Service<Routes, {
  /** The route `name` (it follows reloads: each call runs on the config current when it starts). */
  readonly get: (name: string) => LLM["Service"] | undefined
  /** Route names of the current config. */
  readonly names: () => ReadonlyArray<string>
  /** The current config. */
  readonly config: () => SwitchboardConfig
  /** Loads the file again and swaps it in if it is valid (what a file change does with `watch`). */
  readonly reload: Effect.Effect<void, SwitchboardConfigError.SwitchboardConfigError>
}>()("@switchboard/config/Routes") {}

interface Generation extends Reload.Generation {
  readonly config: SwitchboardConfig
  readonly built: Build.Built
}

/**
 * Every route of the file at `path` by name, as a `Routes` service (what the
 * gateway serves). Breaker and budget state live in stores built once for
 * the layer, so a reload keeps them.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerRoutes = (
  path: string,
  options: LayerOptions = {}
): Layer.Layer<Routes, SwitchboardConfigError.SwitchboardConfigError> =>
  Layer.unwrap(Effect.map(Load.load(path, options), (first) => routesLayer(path, options, first).pipe(
    Layer.provide(storesFor(first))
  )))

/**
 * The stores a config's stacks keep their state in: Redis when the file has
 * `state.redis` (many instances behave as one: one budget, shared breakers
 * and limits), else bounded memory. The gateway provides them to its
 * per-key budgets too.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerStores = (
  config: SwitchboardConfig
): Layer.Layer<BudgetStore.BudgetStore, SwitchboardConfigError.SwitchboardConfigError> => storesFor(config)

const storesFor = (
  config: SwitchboardConfig
): Layer.Layer<BudgetStore.BudgetStore, SwitchboardConfigError.SwitchboardConfigError> => {
  const redis = config.blocks.get("state.redis")
  if (redis === undefined) return Layer.mergeAll(BudgetStore.layerMemory(), BreakerStore.layerMemory())
  return Layer.unwrap(Effect.promise(async () => {
    const module = await import("@switchboard/redis")
    return module.Redis.layer(redis as Parameters<typeof module.Redis.layer>[0]).pipe(
      Layer.catchTag("RedisError", (error) =>
        Layer.effect(BudgetStore.BudgetStore, Effect.fail(
          new SwitchboardConfigError.SwitchboardConfigError({
            path: "state.redis.url",
            message: `cannot reach Redis: ${error.message}`
          })
        )))
    )
  }))
}

const routesLayer = (
  path: string,
  options: LayerOptions,
  initial: SwitchboardConfig
): Layer.Layer<Routes, SwitchboardConfigError.SwitchboardConfigError> =>
  Layer.effect(
    Routes,
    Effect.gen(function*() {
      const context = yield* Effect.context<never>()
      let version = 0
      const generation = (config: SwitchboardConfig): Effect.Effect<Generation, SwitchboardConfigError.SwitchboardConfigError> =>
        Effect.gen(function*() {
          const scope = yield* Scope.make()
          const built = yield* Build.build(config).pipe(
            Scope.provide(scope),
            Effect.onError((cause) => Scope.close(scope, Exit.failCause(cause)))
          )
          return { routes: built.routes, scope, version: ++version, config, built }
        }).pipe(Effect.provideContext(context))
      const first = yield* generation(initial)
      let current: Generation = first
      const reloading = Reload.make(first)
      yield* Effect.addFinalizer(() => reloading.close)
      const reload = Effect.gen(function*() {
        const next = yield* Effect.flatMap(Load.load(path, options), generation)
        current = next
        yield* reloading.swap(next)
        yield* Events.publish(() => ({ _tag: "ConfigReloaded", file: next.config.file, ok: true }))
      }).pipe(
        Effect.tapError((error) =>
          Events.publish(() => ({ _tag: "ConfigReloaded", file: first.config.file, ok: false, error: error.summary }))
        )
      )
      if (options.watch === true) {
        const run = Effect.runForkWith(context)
        yield* Reload.watchFile(first.config.file, () => void run(Effect.ignore(reload)))
      }
      const services = new Map<string, LLM["Service"]>()
      return Routes.of({
        get: (name) => {
          if (!current.routes.has(name)) return undefined
          let service = services.get(name)
          if (service === undefined) {
            service = reloading.route(name)
            services.set(name, service)
          }
          return service
        },
        names: () => [...current.routes.keys()],
        config: () => current.config,
        reload
      })
    })
  )

/**
 * One route of the file at `path` as the `LLM` (`route` default
 * `"default"`). A route the file does not define is a
 * `SwitchboardConfigError` naming the routes it does.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerFromFile = (
  path: string,
  options: LayerOptions & { readonly route?: string | undefined } = {}
): Layer.Layer<LLM, SwitchboardConfigError.SwitchboardConfigError> =>
  Layer.effect(
    LLM,
    Effect.gen(function*() {
      const routes = yield* Routes
      const name = options.route ?? "default"
      const service = routes.get(name)
      if (service === undefined) {
        return yield* SwitchboardConfigError.fromIssues([{
          path: "routes",
          message: `no route "${name}"; the file defines: ${routes.names().join(", ") || "none"}`
        }])
      }
      return service
    })
  ).pipe(Layer.provide(layerRoutes(path, options)))

/**
 * The prompt templates the file's `prompts:` lists, as a `PromptRegistry`
 * (files resolved against the config file's folder, YAML or JSON). A
 * template that does not load is a `SwitchboardConfigError` naming the file.
 *
 * @example
 * ```ts
 * import { SwitchboardConfig } from "@switchboard/config"
 * import { PromptRegistry } from "@switchboard/core"
 * import { Effect } from "effect"
 *
 * const request = PromptRegistry.render("summarise", { text: "…" }).pipe(
 *   Effect.provide(SwitchboardConfig.layerPrompts("switchboard.yaml"))
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerPrompts = (
  path: string,
  options: LoadOptions = {}
): Layer.Layer<PromptRegistry.PromptRegistry, SwitchboardConfigError.SwitchboardConfigError> =>
  Layer.unwrap(Effect.map(Load.load(path, options), (config) =>
    PromptRegistry.layerFiles(config.prompts, { parse: (text) => parseYaml(text) as unknown }).pipe(
      Layer.catchTag("PromptTemplateError", (error) =>
        Layer.effect(
          PromptRegistry.PromptRegistry,
          Effect.fail(new SwitchboardConfigError.SwitchboardConfigError({ path: "prompts", message: error.message }))
        ))
    )))
