/**
 * The `switchboard` command line:
 *
 * - `switchboard serve <file> [--port] [--host] [--env]` runs a gateway until
 *   SIGTERM or SIGINT, then drains and exits 0. `<file>` is a config file
 *   (YAML or JSON: every route is served, keys and limits come from its
 *   `gateway:` block, and the file is watched: a valid change is swapped in
 *   without dropping a connection) or a JavaScript/TypeScript module whose
 *   default export is the gateway's options ({@link Gateway.GatewayOptions}).
 * - `switchboard check <file> [--env]` prints every problem of a config file
 *   with its path (exit 1), or a summary of what it builds.
 * - `switchboard models <file> [--env]` lists each provider's models with
 *   their prices, windows and capabilities from the catalog.
 *
 * @since 0.1.0
 */
import { Cause, Console, Effect, Exit, Layer, Option, Redacted } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import { SwitchboardConfig } from "@switchboard/config"
import { type LLM, Pricing, SwitchboardConfigError, Telemetry } from "@switchboard/core"
import { Otel } from "@switchboard/otel"
import { Redis } from "@switchboard/redis"
import * as Path from "node:path"
import { pathToFileURL } from "node:url"
import * as Gateway from "./Gateway.ts"

/**
 * Loads the gateway options a module exports by default (a value, or an Effect of one).
 *
 * @since 0.1.0
 * @category constructors
 */
export const loadModule = Effect.fnUntraced(function*(file: string) {
  const url = pathToFileURL(Path.resolve(file)).href
  const loaded = yield* Effect.tryPromise({
    try: () => import(url) as Promise<{ readonly default?: unknown }>,
    catch: (cause) =>
      new SwitchboardConfigError.SwitchboardConfigError({
        path: "serve.file",
        message: `${file}: cannot load (${cause instanceof Error ? cause.message : String(cause)})`
      })
  })
  const exported = loaded.default
  const options = Effect.isEffect(exported) ? yield* (exported as Effect.Effect<unknown, unknown>) : exported
  if (typeof options !== "object" || options === null || !("routes" in options)) {
    return yield* new SwitchboardConfigError.SwitchboardConfigError({
      path: "serve.file",
      message: `${file}: the default export must be the gateway options ({ routes, keys?, port?, … })`
    })
  }
  return options as Gateway.GatewayOptions<unknown, never>
})

interface TelemetryBlock {
  readonly serviceName?: string | undefined
  readonly otlp?: { readonly endpoint: string; readonly headers?: Readonly<Record<string, unknown>> | undefined } | undefined
  readonly prometheus?: boolean | { readonly port?: number | undefined; readonly host?: string | undefined } | undefined
}

const isConfigFile = (file: string) => /\.(ya?ml|json)$/i.test(file)

const envFlag = Flag.String("env").pipe(
  Flag.withDescription("environment overlay of the config file (default SWITCHBOARD_ENV)"),
  Flag.optional
)

const fileArgument = Argument.String("file").pipe(Argument.withDescription("a switchboard.yaml (or .json) config file"))

/**
 * Serves every route of a config file: keys, limits and settings from its
 * `gateway:` block; the file is watched and valid changes are swapped in.
 *
 * @since 0.1.0
 * @category running
 */
export const serveConfig = (
  file: string,
  overrides: { readonly port?: number | undefined; readonly host?: string | undefined; readonly environment?: string | undefined }
) =>
  Effect.gen(function*() {
    const routes = yield* SwitchboardConfig.Routes
    const config = routes.config()
    const raw = config.raw.gateway ?? {}
    // The gateway decodes its own block: the same checks as a program's options, paths under `gateway`.
    const block = yield* SwitchboardConfigError.decode("gateway", Gateway.Options, {
      ...raw,
      ...(raw.keys !== undefined ? { keys: raw.keys.map((key) => ({ ...key, key: Redacted.make(key.key) })) } : {})
    })
    const services: Record<string, LLM["Service"]> = Object.fromEntries(
      routes.names().map((name) => [name, routes.get(name)!] as const)
    )
    const telemetry = config.blocks.get("telemetry") as TelemetryBlock | undefined
    const serveWith = (metrics: Effect.Effect<string> | undefined) =>
      Effect.flatMap(
        // With `state.redis`, GET /ready also pings Redis: an instance that cannot reach the shared
        // budget is taken out of the load balancer rather than refusing every budgeted call.
        Effect.serviceOption(Redis.RedisStores),
        (redis) =>
          Gateway.serve<never, never>({
            ...block,
            routes: services,
            ...(metrics !== undefined ? { metrics } : {}),
            ...(Option.isSome(redis) ? { ready: redis.value.ping } : {}),
            ...(overrides.port !== undefined ? { port: overrides.port } : {}),
            ...(overrides.host !== undefined ? { host: overrides.host } : {})
          })
      )
    // Per-key budgets keep their state where the routes do: on Redis with `state.redis`, so every gateway
    // instance enforces one budget per key.
    const stores = SwitchboardConfig.layerStores(config)
    if (telemetry === undefined) {
      return yield* serveWith(undefined).pipe(Effect.provide(Layer.merge(Telemetry.layerMetrics, stores)))
    }
    // `telemetry:` exports spans and metrics (OTLP when an endpoint is set); GET /metrics serves the same
    // metrics as Prometheus text on the gateway's own port.
    const otlpEndpoint = telemetry.otlp?.endpoint ?? ""
    const otel = Otel.layer({
      serviceName: telemetry.serviceName ?? "switchboard",
      ...(otlpEndpoint !== "" && telemetry.otlp !== undefined ? { otlp: telemetry.otlp as Otel.OtlpOptions } : {}),
      ...(typeof telemetry.prometheus === "object" ? { prometheus: telemetry.prometheus } : {})
    })
    return yield* Effect.gen(function*() {
      const prometheus = yield* Otel.Prometheus
      return yield* serveWith(prometheus.text)
    }).pipe(Effect.provide(Layer.merge(otel, stores)))
  }).pipe(
    Effect.provide(
      SwitchboardConfig.layerRoutes(file, { environment: overrides.environment, watch: true })
    )
  )

const serve = Command.make(
  "serve",
  {
    file: Argument.String("file").pipe(
      Argument.withDescription("a config file (switchboard.yaml) or a module exporting the gateway options")
    ),
    port: Flag.Int("port").pipe(Flag.withDescription("port to listen on (overrides the file; 0 = any free port)"), Flag.optional),
    host: Flag.String("host").pipe(Flag.withDescription("address to bind (default 127.0.0.1)"), Flag.optional),
    env: envFlag
  },
  Effect.fnUntraced(function*({ file, port, host, env }) {
    const overrides = {
      port: Option.getOrUndefined(port),
      host: Option.getOrUndefined(host),
      environment: Option.getOrUndefined(env)
    }
    if (isConfigFile(file)) return yield* serveConfig(file, overrides)
    const options = yield* loadModule(file)
    yield* Gateway.serve({
      ...options,
      ...(overrides.port !== undefined ? { port: overrides.port } : {}),
      ...(overrides.host !== undefined ? { host: overrides.host } : {})
    })
  })
).pipe(Command.withDescription("Serve an OpenAI- and Anthropic-compatible gateway"))

/**
 * What a config file builds, in a few lines (never a secret).
 *
 * @since 0.1.0
 * @category formatting
 */
export const summary = (config: SwitchboardConfig.SwitchboardConfig): string => {
  const raw = config.raw
  const lines = [`${config.file}${config.environment === undefined ? "" : ` (environment ${config.environment})`}: ok`]
  lines.push(`providers: ${[...config.providers.values()].map((p) => `${p.name} (${p.type})`).join(", ")}`)
  lines.push(`models: ${Object.entries(raw.models).map(([name, m]) => {
    const extras = [m.retry && "retry", m.breaker && "breaker", m.hedge && "hedge", m.timeout !== undefined && "timeout"]
      .filter(Boolean)
    return `${name} = ${m.provider}/${m.model}${extras.length > 0 ? ` [${extras.join(", ")}]` : ""}`
  }).join("; ")}`)
  lines.push("routes:")
  for (const [name, route] of Object.entries(raw.routes)) {
    const how = "model" in route
      ? route.model
      : "fallback" in route
      ? `fallback ${route.fallback.join(" → ")}${route.midStream === undefined ? "" : ` (midStream ${route.midStream})`}`
      : `router ${route.router.strategy} over ${route.router.candidates.map((c) => typeof c === "string" ? c : c.name).join(", ")}`
    lines.push(`  ${name}: ${how}`)
  }
  const budget = raw.limits?.budget
  if (budget !== undefined) {
    lines.push(`budget: $${String(budget["limitUsd"])} per ${String(budget["window"])}${
      budget["softAt"] === undefined ? "" : `, past ${Number(budget["softAt"]) * 100}% → route ${String(budget["onSoft"] ?? "(none)")}`
    }`)
  }
  if (raw.limits?.rateLimit !== undefined) lines.push(`rate limit: ${JSON.stringify(raw.limits.rateLimit)}`)
  if (raw.cache !== undefined) lines.push(`cache: ${JSON.stringify(raw.cache)}`)
  if (raw.gateway?.keys !== undefined) {
    lines.push(`gateway keys: ${raw.gateway.keys.map((k) => `${k.tenant} → ${(k.routes ?? ["all routes"]).join(", ")}`).join("; ")}`)
  }
  return lines.join("\n")
}

const check = Command.make(
  "check",
  { file: fileArgument, env: envFlag },
  Effect.fnUntraced(function*({ file, env }) {
    const loaded = yield* Effect.result(SwitchboardConfig.load(file, { environment: Option.getOrUndefined(env) }))
    if (loaded._tag === "Failure") {
      return yield* new SwitchboardConfigError.SwitchboardConfigError({
        ...loaded.failure,
        message: `${file}: ${loaded.failure.issues?.length ?? 1} problem(s)`
      })
    }
    yield* Console.log(summary(loaded.success))
  })
).pipe(Command.withDescription("Check a config file: every problem with its path, or what it builds"))

const models = Command.make(
  "models",
  { file: fileArgument, env: envFlag },
  Effect.fnUntraced(function*({ file, env }) {
    const config = yield* SwitchboardConfig.load(file, { environment: Option.getOrUndefined(env) })
    const pricing = yield* Pricing.Pricing
    for (const entry of config.providers.values()) {
      const built = entry.descriptor.build(entry.type, entry.name, entry.options)
      yield* Console.log(`${entry.name} (${entry.type}, priced as ${built.provider})`)
      const listed = yield* Effect.result(built.listModels)
      const ids = listed._tag === "Success"
        ? listed.success.map((m) => m.id)
        : Object.values(config.raw.models).filter((m) => m.provider === entry.name).map((m) => m.model)
      if (listed._tag === "Failure") {
        yield* Console.log(`  (listing failed: ${listed.failure.message}; showing the models the file names)`)
      }
      for (const id of ids) {
        const price = pricing.lookup(built.provider, id)
        if (price === undefined) {
          yield* Console.log(`  ${id}  price unknown`)
          continue
        }
        const caps = Object.entries(price.capabilities).filter(([, on]) => on).map(([cap]) => cap).join(", ")
        yield* Console.log(
          `  ${id}  $${price.inputPerMillion}/M in, $${price.outputPerMillion}/M out, window ${price.contextWindow}, max out ${price.maxOutput}${
            caps === "" ? "" : `, ${caps}`
          }`
        )
      }
    }
  })
).pipe(Command.withDescription("List each provider's models with prices, windows and capabilities"))

/**
 * The `switchboard` command.
 *
 * @since 0.1.0
 * @category commands
 */
export const command = Command.make("switchboard").pipe(
  Command.withDescription("Switchboard: one typed LLM service in front of every provider"),
  Command.withSubcommands([serve, check, models])
)

/**
 * Runs the command on `process.argv`.
 *
 * @since 0.1.0
 * @category running
 */
export const run = Command.run(command, { version: "0.1.0" }).pipe(
  Effect.tapCause((cause) => Cause.hasInterruptsOnly(cause) ? Effect.void : Console.error(report(cause)))
)

/**
 * What a failed run prints: a config error as its `path: message` lines (the
 * `check` command has printed them already), anything else as its message —
 * never a stack trace for a user's mistake.
 *
 * @since 0.1.0
 * @category formatting
 */
export const report = (cause: Cause.Cause<unknown>): string => {
  const error = Cause.squash(cause)
  if (SwitchboardConfigError.isSwitchboardConfigError(error)) {
    const lines = error.summary
    const first = error.issues?.[0]
    const header = first === undefined || error.message === first.message ? undefined : error.message
    return header === undefined ? `switchboard: ${lines}` : `switchboard: ${header}\n${lines}`
  }
  return `switchboard: ${error instanceof Error ? error.message : String(error)}`
}

/**
 * The process exit code for a finished `switchboard` run: 0 for success and
 * for an interruption (SIGTERM/SIGINT after draining), 1 otherwise.
 *
 * @since 0.1.0
 * @category running
 */
export const exitCode = (exit: Exit.Exit<unknown, unknown>): number =>
  Exit.isSuccess(exit) || Cause.hasInterruptsOnly(exit.cause) ? 0 : 1

