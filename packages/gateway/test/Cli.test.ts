import { assert, describe, it } from "@effect/vitest"
import { Cli } from "@switchboard/gateway"
import { Cause, Effect, Exit } from "effect"
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"

describe("switchboard CLI", () => {
  it.effect("serve loads a module whose default export is the gateway options", () =>
    Effect.gen(function*() {
      const options = yield* Cli.loadModule(fileURLToPath(new URL("./fixtures/options.ts", import.meta.url)))
      assert.deepStrictEqual(Object.keys(options.routes), ["default"])
      assert.strictEqual(options.port, 0)
    }))

  it.effect("a broken config file given to serve fails with every problem and its path, before listening", () =>
    Effect.gen(function*() {
      const file = join(mkdtempSync(join(tmpdir(), "switchboard-cli-unit-")), "broken.yaml")
      writeFileSync(file, "version: 1\nproviders: {}\nmodels: {}\nroutes: { default: { model: nope } }\n")
      const error = yield* Effect.flip(Cli.serveConfig(file, {}))
      assert.strictEqual(error._tag, "SwitchboardConfigError")
      if (error._tag !== "SwitchboardConfigError") return
      assert.strictEqual(error.path, "routes.default.model")
      assert.include(Cli.report(Cause.fail(error)), `routes.default.model: unknown model "nope"`)
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
