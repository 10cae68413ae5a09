/**
 * The `switchboard` command line: `switchboard serve <module> [--port] [--host]`
 * runs a gateway until SIGTERM or SIGINT, then drains and exits 0.
 *
 * `<module>` is a JavaScript or TypeScript module whose default export is the
 * gateway's options ({@link Gateway.GatewayOptions}: routes and the `gateway:`
 * settings), or an `Effect` that builds them. YAML/JSON config files are
 * served once the config package lands (`SwitchboardConfig.layerRoutes`);
 * until then a config file is refused with a message saying so. `check` and
 * `models` arrive with the config package too.
 *
 * @since 0.1.0
 */
import { Cause, Effect, Exit, Option } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import { SwitchboardConfigError } from "@switchboard/core"
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
  if (/\.(ya?ml|json)$/i.test(file)) {
    return yield* new SwitchboardConfigError.SwitchboardConfigError({
      path: "serve.file",
      message: `${file}: config files are served through @switchboard/config (SwitchboardConfig.layerRoutes), ` +
        `which this build does not include yet; pass a module whose default export is the gateway options`
    })
  }
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

const serve = Command.make(
  "serve",
  {
    file: Argument.String("file").pipe(Argument.withDescription("module exporting the gateway options (routes, keys, …)")),
    port: Flag.Int("port").pipe(Flag.withDescription("port to listen on (overrides the module; 0 = any free port)"), Flag.optional),
    host: Flag.String("host").pipe(Flag.withDescription("address to bind (default 127.0.0.1)"), Flag.optional)
  },
  Effect.fnUntraced(function*({ file, port, host }) {
    const options = yield* loadModule(file)
    yield* Gateway.serve({
      ...options,
      ...(Option.isSome(port) ? { port: port.value } : {}),
      ...(Option.isSome(host) ? { host: host.value } : {})
    })
  })
).pipe(Command.withDescription("Serve an OpenAI- and Anthropic-compatible gateway"))

/**
 * The `switchboard` command.
 *
 * @since 0.1.0
 * @category commands
 */
export const command = Command.make("switchboard").pipe(
  Command.withDescription("Switchboard: one typed LLM service in front of every provider"),
  Command.withSubcommands([serve])
)

/**
 * Runs the command on `process.argv`.
 *
 * @since 0.1.0
 * @category running
 */
export const run = Command.run(command, { version: "0.1.0" })

/**
 * The process exit code for a finished `switchboard` run: 0 for success and
 * for an interruption (SIGTERM/SIGINT after draining), 1 otherwise.
 *
 * @since 0.1.0
 * @category running
 */
export const exitCode = (exit: Exit.Exit<unknown, unknown>): number =>
  Exit.isSuccess(exit) || Cause.hasInterruptsOnly(exit.cause) ? 0 : 1

