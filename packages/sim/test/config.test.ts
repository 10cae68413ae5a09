import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { Sim, SimConfig } from "../src/index.ts"
import { call, openaiClient } from "./helpers.ts"

const tmp = (name: string, text: string) => {
  const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "sim-config-"))
  const file = Path.join(dir, name)
  Fs.writeFileSync(file, text)
  return file
}

const badYaml = `
providers:
  openai:
    protocol: openai
    models:
      - id: gpt-4o-mini
        contextWindow: -5
        maxOutput: 100
`

describe("config validation", () => {
  it.effect("a bad config object fails with SimConfigError naming the field's path", () =>
    Effect.gen(function*() {
      const e = yield* Effect.flip(
        Sim.start({ providers: { openai: { protocol: "openai", models: [{ id: "m", contextWindow: -5, maxOutput: 1 }] } } })
      )
      assert.strictEqual(e._tag, "SimConfigError")
      assert.include(e.message, `["providers"]["openai"]["models"][0]["contextWindow"]`)
      const proto = yield* Effect.flip(SimConfig.decodeConfig({ providers: { x: { protocol: "grpc", models: [] } } }))
      assert.include(proto.message, `["providers"]["x"]["protocol"]`)
      const extra = yield* Effect.flip(SimConfig.decodeConfig({ providers: {}, colour: "blue" }))
      assert.include(extra.message, `["colour"]`)
      const dup = yield* Effect.flip(
        SimConfig.decodeConfig({ providers: { o: { protocol: "openai", models: [{ id: "a", contextWindow: 1, maxOutput: 1 }, { id: "a", contextWindow: 1, maxOutput: 1 }] } } })
      )
      assert.include(dup.message, `["models"][1]["id"]`)
    }))

  it.effect("a bad YAML file fails naming the file and the field's path", () =>
    Effect.gen(function*() {
      const file = tmp("sim.yaml", badYaml)
      const e = yield* Effect.flip(SimConfig.loadConfigFile(file))
      assert.include(e.message, file)
      assert.include(e.message, `["providers"]["openai"]["models"][0]["contextWindow"]`)
      const missing = yield* Effect.flip(SimConfig.loadConfigFile(Path.join(Os.tmpdir(), "no-such-sim.yaml")))
      assert.include(missing.message, "Cannot read")
    }))

  it.live("a good JSON file starts a working sim", () =>
    Effect.gen(function*() {
      const file = tmp("sim.json", JSON.stringify({ providers: { oa: { protocol: "openai", models: [{ id: "m1", contextWindow: 1000, maxOutput: 50 }] } } }))
      const config = yield* SimConfig.loadConfigFile(file)
      const sim = yield* Sim.start(config)
      assert.match(sim.url, /^http:\/\/127\.0\.0\.1:\d+$/)
      const r = yield* call(() => openaiClient(sim.url, "oa").chat.completions.create({ model: "m1", messages: [{ role: "user", content: "x" }] }))
      assert.strictEqual(r.choices[0]!.finish_reason, "stop")
    }))

  it.live("startPromise serves the default config and closes", () =>
    Effect.gen(function*() {
      const sim = yield* call(() => Sim.startPromise())
      const r = yield* call(() => openaiClient(sim.url).chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "x" }] }))
      assert.strictEqual(r.model, "gpt-4o-mini")
      yield* call(() => sim.close())
      const after = yield* call(() => fetch(`${sim.url}/_sim/health`).then(() => "open", () => "closed"))
      assert.strictEqual(after, "closed")
      const bad = yield* call(() => Sim.startPromise({ providers: { a: { protocol: "x" } } }).then(() => undefined, (e) => e))
      assert.strictEqual(bad._tag, "SimConfigError")
    }))

  it("the CLI exits non-zero with a message naming the bad field", () => {
    const file = tmp("bad.yaml", badYaml)
    const bin = fileURLToPath(new URL("../bin/switchboard-sim.ts", import.meta.url))
    const r = spawnSync(process.execPath, [bin, "--port", "0", "--config", file], { encoding: "utf8", timeout: 20_000 })
    assert.strictEqual(r.status, 1)
    assert.include(r.stderr, `["providers"]["openai"]["models"][0]["contextWindow"]`)
  })
})
