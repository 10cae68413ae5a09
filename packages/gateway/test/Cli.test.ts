import { assert, describe, it } from "@effect/vitest"
import { Cli } from "@switchboard/gateway"
import { Cause, Effect, Exit, Option } from "effect"
import { fileURLToPath } from "node:url"

const pathOf = (exit: Exit.Exit<unknown, unknown>) => {
  if (Exit.isSuccess(exit)) return "loaded"
  const error = Cause.findErrorOption(exit.cause)
  return Option.isSome(error) ? (error.value as { path?: string; message?: string }) : "other"
}

describe("switchboard CLI", () => {
  it.effect("serve loads a module whose default export is the gateway options", () =>
    Effect.gen(function*() {
      const options = yield* Cli.loadModule(fileURLToPath(new URL("./fixtures/options.ts", import.meta.url)))
      assert.deepStrictEqual(Object.keys(options.routes), ["default"])
      assert.strictEqual(options.port, 0)
    }))

  it.effect("a config file is refused with a message naming the missing config package, not silently accepted", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(Cli.loadModule("examples/switchboard.yaml"))
      const error = pathOf(exit)
      assert.isTrue(typeof error === "object")
      assert.strictEqual((error as { path: string }).path, "serve.file")
      assert.include((error as { message: string }).message, "@switchboard/config")
    }))

  it.effect("a module without gateway options is refused", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(Cli.loadModule(fileURLToPath(new URL("./Cli.test.ts", import.meta.url))))
      assert.isTrue(Exit.isFailure(exit))
    }))

  it("SIGTERM after draining exits 0; a failure exits 1", () => {
    assert.strictEqual(Cli.exitCode(Exit.interrupt(1)), 0)
    assert.strictEqual(Cli.exitCode(Exit.void), 0)
    assert.strictEqual(Cli.exitCode(Exit.fail("boom")), 1)
  })
})
