#!/usr/bin/env node
/**
 * `switchboard-sim`: run the provider simulator standalone.
 *
 * ```
 * switchboard-sim [--port 4010] [--host 127.0.0.1] [--config sim.yaml]
 * ```
 *
 * Without `--config` it serves `Sim.defaultConfig` (providers `openai`,
 * `anthropic`, `gemini`, `bedrock`). A bad config prints the path of the bad
 * field and exits with status 1.
 *
 * The simulator exits with its parent: SIGTERM, SIGINT and SIGHUP close it,
 * and so does the death of the process that started it (`pnpm exec`, a
 * shell, a test runner) — a wrapper that does not forward signals would
 * otherwise leave it listening.
 *
 * @since 0.1.0
 */
import { NodeRuntime } from "@effect/platform-node"
import { Effect } from "effect"
import { parseArgs } from "node:util"
import { Sim, SimConfig } from "../index.ts"

const usage = "usage: switchboard-sim [--port 4010] [--host 127.0.0.1] [--config sim.yaml|sim.json]"

const args = (() => {
  try {
    return parseArgs({
      options: {
        port: { type: "string", short: "p" },
        host: { type: "string" },
        config: { type: "string", short: "c" },
        help: { type: "boolean", short: "h" }
      },
      strict: true
    }).values
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n${usage}\n`)
    process.exit(2)
  }
})()

if (args.help === true) {
  process.stdout.write(`${usage}\n`)
  process.exit(0)
}

const port = args.port === undefined ? undefined : Number(args.port)
if (port !== undefined && (!Number.isInteger(port) || port < 0 || port > 65535)) {
  process.stderr.write(`--port must be an integer 0..65535, got ${JSON.stringify(args.port)}\n`)
  process.exit(2)
}

const program = Effect.gen(function*() {
  const base = args.config !== undefined ? yield* SimConfig.loadConfigFile(args.config) : SimConfig.defaultConfig
  const config = {
    ...base,
    ...(port !== undefined ? { port } : {}),
    ...(args.host !== undefined ? { host: args.host } : {})
  }
  const sim = yield* Sim.start(config)
  const names = Object.keys(config.providers)
  process.stdout.write(`switchboard-sim listening on ${sim.url}\n`)
  for (const name of names) {
    process.stdout.write(`  ${name} (${config.providers[name]!.protocol}): ${sim.providerUrl(name)}\n`)
  }
  return yield* Effect.never
}).pipe(
  Effect.scoped,
  Effect.catchTag("SimConfigError", (e) =>
    Effect.sync(() => {
      process.stderr.write(`switchboard-sim: ${e.message}\n`)
      process.exit(1)
    }))
)

// Exit with the parent: when the process that started us is gone (we were
// re-parented), stop as if told to. SIGHUP (a closed terminal) stops us too.
const parent = process.ppid
const orphaned = () => process.ppid !== parent
setInterval(() => {
  if (orphaned()) process.kill(process.pid, "SIGTERM")
}, 200).unref()
process.once("SIGHUP", () => process.kill(process.pid, "SIGTERM"))

NodeRuntime.runMain(program)
