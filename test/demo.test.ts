/**
 * `pnpm demo` end to end: the script starts the simulator, builds its stack
 * from `examples/switchboard.yaml`, runs its few hundred requests and must
 * end with a clean verdict and a report that tells the story true.
 */
import { assert, describe, expect, it } from "@effect/vitest"
import { SwitchboardConfig } from "@switchboard/config"
import { Llm } from "@switchboard/core"
import { Sim } from "@switchboard/sim"
import { Effect } from "effect"
import { spawnSync } from "node:child_process"
import { fileURLToPath } from "node:url"

const yaml = fileURLToPath(new URL("../examples/switchboard.yaml", import.meta.url))

describe("pnpm demo", () => {
  it("runs every request to an answer or a typed error and reports it", () => {
    const script = fileURLToPath(new URL("../scripts/demo.ts", import.meta.url))
    const result = spawnSync(process.execPath, [script, "--requests", "200"], { encoding: "utf8", timeout: 90_000 })
    expect(result.status, result.stderr).toBe(0)
    expect(result.stdout).toMatch(/VERDICT: all \d+ requests ended — \d+ answered, \d+ failed with a typed LlmError, 0 lost/)
    expect(result.stdout).toContain("Per provider")
    expect(result.stdout).toMatch(/switch openai\/gpt-4o-mini → anthropic/)
    expect(result.stdout).toMatch(/from cache: [1-9]/)

    // Built from the file, and says so.
    expect(result.stdout).toContain("Stack from examples/switchboard.yaml:")
    expect(result.stdout).toMatch(/route default: fallback fast \(openai gpt-4o-mini\) → claude \(anthropic claude-haiku-4-5\) → cheap \(groq/)

    // Repeats are folded on the line they repeat: no two log lines alike in a row, no detached "more like it".
    expect(result.stdout).not.toMatch(/more like it/)
    expect(result.stdout).toMatch(/↪ switch .*  ×\d+\n/)
    const log = result.stdout.slice(result.stdout.indexOf("What the stack did"), result.stdout.indexOf("Per provider"))
    const lines = log.split("\n")
    assert.isAbove(lines.filter((line) => /^\s+[↪⚡↻⏳$✗]/.test(line)).length, 0)
    lines.forEach((line, i) => {
      if (line.trim() !== "") assert.notStrictEqual(line, lines[i + 1], `line ${i} repeats unfolded: ${line}`)
    })

    // Every column of the tables is explained under it.
    for (const column of ["attempts", "ok", "failed", "fell back", "breaker", "tokens", "cost", "requests", "answered", "from cache", "p50/p95 ms"]) {
      expect(result.stdout).toMatch(new RegExp(`\\n    ${column} +\\S`))
    }
    // Failures are broken down by error tag: the attempts the stack absorbed, and what callers saw.
    expect(result.stdout).toMatch(/Failed attempts by error tag[^\n]*\n {2}openai: (\w+ \d+)(, \w+ \d+)*\n/)
    expect(result.stdout).toMatch(/Failed requests by error tag\n {2}(none|\w+ \d+ \()/)

    // The budget story: past the soft limit the default route goes to the cheap one, and cheap calls succeed.
    const crossed = /the soft limit was crossed at \$([\d.]+) \((\d+)%\)/.exec(result.stdout)
    assert.isNotNull(crossed, result.stdout)
    assert.isAtLeast(Number(crossed![2]), 80)
    const after = /after the switch: (\d+) calls, (\d+) answered by groq \(the cheap route\), \d+ by others, (\d+) refused with BudgetExceeded/
      .exec(result.stdout)
    assert.isNotNull(after, result.stdout)
    const [calls, cheap, refused] = [Number(after![1]), Number(after![2]), Number(after![3])]
    assert.isAtLeast(cheap, 5, "calls after the switch reach the cheap provider")
    assert.strictEqual(cheap + refused, calls, "every call after the switch is answered by the cheap provider or refused at the limit")
    if (refused > 0) {
      // Refused only when the limit truly nears, and a worst case is what such a call can cost
      // (its defaults.maxTokens of output), not the model's whole max output.
      const first = /the first refusal needed \$([\d.]+) with \$([\d.]+) left \((\d+)% of the budget spent or reserved\)/.exec(result.stdout)
      assert.isNotNull(first, result.stdout)
      assert.isBelow(Number(first![1]), 0.01, "a cheap call's worst case is small")
      assert.isBelow(Number(first![2]), Number(first![1]))
      assert.isAtLeast(Number(first![3]), 95, "the budget is nearly used up when the first call is refused")
    }
    const spent = /spent \$([\d.]+) of \$([\d.]+)/.exec(result.stdout)
    assert.isNotNull(spent)
    assert.isAtMost(Number(spent![1]), Number(spent![2]), "the budget caps what is spent")
  }, 120_000)

  it.effect("examples/switchboard.yaml loads with no variables set, and in its dev and prod environments", () =>
    Effect.gen(function*() {
      const base = yield* SwitchboardConfig.load(yaml, { env: {} })
      assert.deepStrictEqual(Object.keys(base.raw.routes), ["default", "cheap"])
      const fallbackOf = (config: SwitchboardConfig.SwitchboardConfig, route: string) => {
        const r = config.raw.routes[route]!
        return "fallback" in r ? r.fallback : []
      }
      assert.deepStrictEqual(fallbackOf(base, "default"), ["fast", "claude", "cheap"])
      assert.deepStrictEqual(fallbackOf(base, "cheap"), ["cheap", "fast"])
      assert.deepStrictEqual(base.raw.limits?.budget, { limitUsd: 0.3, window: "day", softAt: 0.8, onSoft: "cheap" })
      for (const model of ["fast", "claude", "cheap"]) {
        assert.strictEqual(base.models[model]!.defaults?.["maxTokens"], 200, `${model} fills in maxTokens`)
      }
      assert.strictEqual(base.models["cheap"]!.model, "llama-3.1-8b-instant")

      const dev = yield* SwitchboardConfig.load(yaml, { env: {}, environment: "dev" })
      assert.deepStrictEqual(fallbackOf(dev, "default"), ["cheap"], "dev sends everything to the cheap model")
      assert.strictEqual(dev.raw.limits?.budget?.["limitUsd"], 1)

      const prod = yield* SwitchboardConfig.load(yaml, { env: { SWITCHBOARD_ENV: "prod" } })
      assert.strictEqual(prod.environment, "prod")
      assert.deepStrictEqual(fallbackOf(prod, "default"), ["fast", "claude", "cheap"])
      assert.strictEqual(prod.raw.limits?.budget?.["limitUsd"], 50)
      assert.deepStrictEqual(prod.models["fast"]!.breaker, { failureThreshold: 4, cooldown: "30 seconds", halfOpenProbes: 1 })
    }))

  it.live("docs/demo.md's program: the file's dev environment answers from the cheap model, the base one from openai", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.start({
        providers: {
          openai: { protocol: "openai", models: [{ id: "gpt-4o-mini", contextWindow: 128_000, maxOutput: 16_384 }] },
          anthropic: { protocol: "anthropic", models: [{ id: "claude-haiku-4-5", contextWindow: 200_000, maxOutput: 64_000 }] },
          groq: { protocol: "openai", models: [{ id: "llama-3.1-8b-instant", contextWindow: 131_072, maxOutput: 32_768 }] }
        }
      })
      const env = {
        OPENAI_API_KEY: "sk-sim",
        OPENAI_BASE_URL: `${sim.providerUrl("openai")}/v1`,
        ANTHROPIC_API_KEY: "sk-ant-sim",
        ANTHROPIC_BASE_URL: sim.providerUrl("anthropic"),
        GROQ_API_KEY: "gsk-sim",
        GROQ_BASE_URL: `${sim.providerUrl("groq")}/v1`
      }
      const ask = Llm.generate({ messages: [{ role: "user", content: "Say hello" }] })
      const dev = yield* ask.pipe(Effect.provide(SwitchboardConfig.layerFromFile(yaml, { environment: "dev", env })))
      assert.strictEqual(dev.provider, "groq")
      assert.isAbove(dev.text.length, 0)
      const base = yield* ask.pipe(Effect.provide(SwitchboardConfig.layerFromFile(yaml, { env })))
      assert.strictEqual(base.provider, "openai")
    }))

  it.effect("its variables point it elsewhere, and a key never shows in the loaded file's errors", () =>
    Effect.gen(function*() {
      const pointed = yield* SwitchboardConfig.load(yaml, {
        env: { OPENAI_BASE_URL: "http://127.0.0.1:9/v1", GROQ_MODEL: "gpt-4.1-nano", GROQ_NAME: "openai", OPENAI_API_KEY: "sk-secret-1234" }
      })
      assert.strictEqual(pointed.models["cheap"]!.model, "gpt-4.1-nano")
      const openai = pointed.providers.get("openai")!.options as { readonly baseURL?: string }
      assert.strictEqual(openai.baseURL, "http://127.0.0.1:9/v1")
      assert.notInclude(JSON.stringify(pointed.providers.get("openai")!.options), "sk-secret-1234")

      const error = yield* Effect.flip(SwitchboardConfig.load(yaml, { env: { OPENAI_API_KEY: "sk-secret-1234", OPENAI_BASE_URL: "not a url" } }))
      assert.strictEqual(error._tag, "SwitchboardConfigError")
      assert.strictEqual(error.path, "providers.openai.baseURL")
      assert.notInclude(error.summary, "sk-secret-1234")
    }))
})
