/**
 * The `switchboard-sim` CLI as a real process: it exits with its parent. A
 * wrapper such as `pnpm exec` does not forward signals, so killing the
 * wrapper must still stop the simulator, never leave it listening.
 */
import { assert, describe, it } from "@effect/vitest"
import { type ChildProcess, spawn } from "node:child_process"
import * as Net from "node:net"
import { fileURLToPath } from "node:url"
import { Effect, Schedule } from "effect"

const bin = fileURLToPath(new URL("../bin/switchboard-sim.ts", import.meta.url))

// A parent like `pnpm exec`: starts the CLI, relays its output, forwards no signal.
const wrapper = `
const { spawn } = require("node:child_process")
const child = spawn(process.execPath, [${JSON.stringify(bin)}, "--port", "0"], { stdio: ["ignore", "pipe", "inherit"] })
child.stdout.pipe(process.stdout)
process.on("SIGTERM", () => {})
setInterval(() => {}, 1000)
`

/** Starts the wrapper and waits for the simulator's port. */
const start = Effect.callback<{ readonly parent: ChildProcess; readonly port: number }, Error>((resume) => {
  const parent = spawn(process.execPath, ["-e", wrapper], { stdio: ["ignore", "pipe", "inherit"] })
  let out = ""
  parent.stdout!.on("data", (chunk: Buffer) => {
    out += chunk.toString("utf8")
    const match = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(out)
    if (match !== null) resume(Effect.succeed({ parent, port: Number(match[1]) }))
  })
  parent.once("exit", () => resume(Effect.fail(new Error(`the wrapper exited before the simulator listened: ${out}`))))
  return Effect.sync(() => parent.kill("SIGKILL"))
})

const listening = (port: number) =>
  Effect.callback<boolean>((resume) => {
    const socket = Net.connect(port, "127.0.0.1")
    socket.once("connect", () => {
      socket.destroy()
      resume(Effect.succeed(true))
    })
    socket.once("error", () => resume(Effect.succeed(false)))
  })

describe("switchboard-sim CLI", () => {
  it.live("killing the wrapper that started it (as pnpm exec) stops the simulator: the port closes", () =>
    Effect.gen(function*() {
      const { parent, port } = yield* start
      assert.isTrue(yield* listening(port), "the simulator listens while its parent lives")
      parent.kill("SIGKILL")
      const closed = yield* listening(port).pipe(
        Effect.flatMap((open) => open ? Effect.fail("still listening" as const) : Effect.succeed(true)),
        Effect.retry(Schedule.spaced("100 millis").pipe(Schedule.upTo({ times: 100 }))),
        Effect.orElseSucceed(() => false)
      )
      assert.isTrue(closed, "the simulator must not outlive its parent")
    }), 30_000)
})
