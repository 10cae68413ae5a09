/**
 * Config files built into stacks and called over the real SDKs against the
 * simulator: every provider type, every route kind, overlays, limits, reload.
 */
import { assert, describe, it } from "@effect/vitest"
import { SwitchboardConfig } from "@switchboard/config"
import { Llm, type LlmError } from "@switchboard/core"
import { Sim } from "@switchboard/sim"
import { Effect, Fiber, Layer, Stream } from "effect"
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

const dir = mkdtempSync(join(tmpdir(), "switchboard-build-"))
let counter = 0
const write = (text: string): string => {
  const file = join(dir, `b${counter++}.yaml`)
  writeFileSync(file, text)
  return file
}

const vertexToken = "ya29.sim-vertex-token-4242"
const simConfig = {
  ...Sim.defaultConfig,
  providers: {
    ...Sim.defaultConfig.providers,
    groq: { protocol: "openai" as const, models: [{ id: "llama-3.1-8b-instant", contextWindow: 131_072, maxOutput: 8_192 }] },
    vertex: { ...Sim.defaultConfig.providers["gemini"]!, apiKeys: [vertexToken] }
  }
}

const file = (sim: Sim.SimHandle, rest: string) =>
  write(`
version: 1
providers:
  openai: { type: openai, apiKey: "\${OPENAI_KEY:-sk-test}", baseURL: "${sim.providerUrl("openai")}/v1" }
  groq: { type: openai-compatible, baseURL: "${sim.providerUrl("groq")}/v1" }
  anthropic: { type: anthropic, apiKey: sk-ant-test, baseURL: "${sim.providerUrl("anthropic")}" }
  gemini: { type: google, apiKey: AIza-test, baseURL: "${sim.providerUrl("gemini")}" }
  vertex: { type: vertex, project: p1, location: us-central1, accessToken: "${vertexToken}", baseURL: "${sim.providerUrl("vertex")}" }
  bedrock:
    type: bedrock
    region: us-east-1
    endpoint: "${sim.providerUrl("bedrock")}"
    credentials: { accessKeyId: AKIDTEST, secretAccessKey: wJalrXUtnFEMI-secret }
models:
  fast: { provider: openai, model: gpt-4o-mini, retry: { times: 1, base: "10 millis" }, breaker: { failureThreshold: 2, cooldown: "1 minute" }, defaults: { maxTokens: 64 } }
  cheap: { provider: groq, model: llama-3.1-8b-instant, defaults: { maxTokens: 64 } }
  claude: { provider: anthropic, model: claude-haiku-4-5, defaults: { maxTokens: 64 } }
  flash: { provider: gemini, model: gemini-2.5-flash }
  vflash: { provider: vertex, model: gemini-2.5-flash }
  nova: { provider: bedrock, model: "us.amazon.nova-micro-v1:0" }
${rest}`)

const ask = (text: string) => ({ messages: [{ role: "user" as const, content: text }] })
const env = { env: {} }

describe("SwitchboardConfig builds stacks", () => {
  it.live("a route per provider type answers over its real SDK", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.start(simConfig)
      const path = file(
        sim,
        `routes:
  default: { model: fast }
  groq: { model: cheap }
  claude: { model: claude }
  gemini: { model: flash }
  vertex: { model: vflash }
  bedrock: { model: nova }
`
      )
      const expected: Record<string, string> = {
        default: "openai",
        groq: "groq",
        claude: "anthropic",
        gemini: "google",
        vertex: "google",
        bedrock: "bedrock"
      }
      for (const [route, provider] of Object.entries(expected)) {
        const response = yield* Llm.generate(ask(`hello ${route}`)).pipe(
          Effect.provide(SwitchboardConfig.layerFromFile(path, { ...env, route }))
        )
        assert.strictEqual(response.provider, provider, route)
        assert.isAbove(response.text.length, 0)
        assert.isAbove(response.costUsd, 0, `${route} is priced`)
      }
    }))

  it.live("a fallback route moves to the next model when the first is down; a router route picks by cost", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.start(simConfig)
      const path = file(
        sim,
        `routes:
  default: { fallback: [fast, claude], midStream: fail }
  smart: { router: { strategy: leastCost, candidates: [claude, fast] } }
`
      )
      yield* sim.setFaults("openai", { outages: [{ startMs: 0, durationMs: 60_000, status: 503 }] })
      const layer = SwitchboardConfig.layerRoutes(path, env)
      const { fallback, routed } = yield* Effect.gen(function*() {
        const routes = yield* SwitchboardConfig.Routes
        const fallback = yield* routes.get("default")!.generate(ask("down?"))
        yield* sim.setFaults("openai", {})
        const routed = yield* routes.get("smart")!.generate(ask("cheapest?"))
        return { fallback, routed }
      }).pipe(Effect.provide(layer))
      assert.strictEqual(fallback.provider, "anthropic")
      assert.deepStrictEqual(fallback.attempts.map((a) => `${a.provider}:${a.outcome}`).at(-1), "anthropic:ok")
      assert.strictEqual(routed.provider, "openai", "gpt-4o-mini is cheaper than claude-haiku-4-5")
    }))

  it.live("the dev environment picks the cheap chain; streams work through a route", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.start(simConfig)
      const path = file(
        sim,
        `routes:
  default: { fallback: [fast, claude] }
environments:
  dev: { routes: { default: { fallback: [cheap] } } }
`
      )
      const dev = yield* Llm.generate(ask("hi")).pipe(
        Effect.provide(SwitchboardConfig.layerFromFile(path, { env: {}, environment: "dev" }))
      )
      assert.strictEqual(dev.provider, "groq")
      const parts = yield* Llm.stream(ask("stream please")).pipe(
        Stream.runCollect,
        Effect.provide(SwitchboardConfig.layerFromFile(path, env))
      )
      const last = parts.at(-1)!
      assert.strictEqual(last.type, "finish")
      if (last.type === "finish") assert.strictEqual(last.response.provider, "openai")
    }))

  it.live("a budget with softAt switches to the onSoft route and still caps the total across routes", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.start(simConfig)
      const path = file(
        sim,
        `routes:
  default: { model: claude }
  cheap: { model: fast }
limits:
  budget: { limitUsd: 0.002, window: day, softAt: 0.5, onSoft: cheap }
`
      )
      const results = yield* Effect.gen(function*() {
        const routes = yield* SwitchboardConfig.Routes
        const seen: Array<{ readonly who: string; readonly costUsd: number }> = []
        for (let i = 0; i < 80; i++) {
          const route = i % 4 === 3 ? "cheap" : "default"
          const result = yield* Effect.result(routes.get(route)!.generate(ask(`question ${i} about the sea`)))
          seen.push(
            result._tag === "Success"
              ? { who: result.success.provider, costUsd: result.success.costUsd }
              : { who: (result.failure as LlmError.LlmError)._tag, costUsd: 0 }
          )
        }
        return seen
      }).pipe(Effect.provide(SwitchboardConfig.layerRoutes(path, env)))
      const who = results.map((r) => r.who)
      assert.strictEqual(who[0], "anthropic")
      const firstSwitch = who.findIndex((w, i) => i % 4 !== 3 && w === "openai")
      assert.isAbove(firstSwitch, 0, "the default route switches to the cheap route past softAt")
      assert.isTrue(who.slice(firstSwitch).every((w) => w !== "anthropic"), "never back to the primary in the window")
      // One budget across both routes: everything spent stays within the limit.
      const spent = results.reduce((sum, r) => sum + r.costUsd, 0)
      assert.isAtMost(spent, 0.002)
      assert.isAbove(spent, 0.001)
    }))

  it.live("reload: an in-flight call finishes on the old stack, a valid change is swapped in, an invalid one keeps serving", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.start({
        ...simConfig,
        providers: {
          ...simConfig.providers,
          anthropic: { ...Sim.defaultConfig.providers["anthropic"]!, latency: { ttftMs: 400 } }
        }
      })
      const path = file(sim, `routes:\n  default: { model: claude }\n`)
      const outcome = yield* Effect.gen(function*() {
        const routes = yield* SwitchboardConfig.Routes
        const route = routes.get("default")!
        const slow = yield* Effect.forkChild(route.generate(ask("slow one")))
        yield* Effect.sleep("50 millis")
        writeFileSync(path, readFileSync(file(sim, `routes:\n  default: { model: fast }\n`), "utf8"))
        yield* routes.reload
        const after = yield* route.generate(ask("after reload"))
        const inFlight = yield* Fiber.join(slow)
        writeFileSync(path, "version: 1\nproviders: {}\nmodels: {}\nroutes: { default: { model: nope } }\n")
        const failed = yield* Effect.flip(routes.reload)
        const still = yield* route.generate(ask("still serving"))
        return { inFlight, after, failed, still }
      }).pipe(Effect.provide(SwitchboardConfig.layerRoutes(path, env)))
      assert.strictEqual(outcome.inFlight.provider, "anthropic", "the in-flight call finished on the old stack")
      assert.strictEqual(outcome.after.provider, "openai", "the new stack answers after the swap")
      assert.strictEqual(outcome.failed.path, "routes.default.model")
      assert.strictEqual(outcome.still.provider, "openai", "an invalid file keeps the current stack")
    }))

  it.effect("a route the file does not define is a SwitchboardConfigError naming the routes it does", () =>
    Effect.gen(function*() {
      const path = write(`
version: 1
providers: { openai: { type: openai, apiKey: k, baseURL: "http://127.0.0.1:9/v1" } }
models: { fast: { provider: openai, model: gpt-4o-mini } }
routes: { default: { model: fast }, other: { model: fast } }
`)
      const error = yield* Effect.flip(
        Layer.build(SwitchboardConfig.layerFromFile(path, { ...env, route: "missing" })).pipe(Effect.scoped)
      )
      assert.strictEqual(error._tag, "SwitchboardConfigError")
      assert.include(error.message, `no route "missing"; the file defines: default, other`)
    }))
})

describe("SwitchboardConfig state on Redis", () => {
  it.live("two stacks built from one file with state.redis share one budget, as two instances would", () =>
    Effect.gen(function*() {
      const { startRedis } = yield* Effect.promise(() => import("../../redis/test/redisServer.ts"))
      const redis = yield* Effect.acquireRelease(Effect.promise(() => startRedis()), (server) => Effect.promise(() => server.stop()))
      const sim = yield* Sim.start(simConfig)
      const path = file(
        sim,
        `routes:
  default: { model: claude }
limits:
  budget: { limitUsd: 0.001, window: day }
state:
  redis: { url: "${redis.url}", prefix: "cfg-test:" }
`
      )
      const spend = (layer: typeof instanceA) =>
        Effect.gen(function*() {
          const routes = yield* SwitchboardConfig.Routes
          let answered = 0
          let refused = 0
          let spent = 0
          for (let i = 0; i < 20; i++) {
            const result = yield* Effect.result(routes.get("default")!.generate(ask(`shared ${i}`)))
            if (result._tag === "Success") {
              answered++
              spent += result.success.costUsd
            } else if (result.failure._tag === "BudgetExceeded") refused++
          }
          return { answered, refused, spent }
        }).pipe(Effect.provide(layer))
      const instanceA = SwitchboardConfig.layerRoutes(path, env)
      const instanceB = SwitchboardConfig.layerRoutes(path, env)
      const [a, b] = yield* Effect.all([spend(instanceA), spend(instanceB)], { concurrency: 2 })
      assert.isAbove(a.answered + b.answered, 0)
      assert.isAbove(a.refused + b.refused, 0, "the shared limit is reached")
      assert.isAtMost(a.spent + b.spent, 0.001, "both instances together stay within one budget")
    }).pipe(Effect.scoped), 60_000)

  it.live("state.redis that cannot be reached fails the build naming state.redis.url", () =>
    Effect.gen(function*() {
      const path = write(`
version: 1
providers: { openai: { type: openai, apiKey: k, baseURL: "http://127.0.0.1:9/v1" } }
models: { fast: { provider: openai, model: gpt-4o-mini } }
routes: { default: { model: fast } }
state: { redis: { url: "redis://127.0.0.1:9" } }
`)
      const error = yield* Effect.flip(Layer.build(SwitchboardConfig.layerRoutes(path, env)).pipe(Effect.scoped))
      assert.strictEqual(error.path, "state.redis.url")
    }), 30_000)
})
