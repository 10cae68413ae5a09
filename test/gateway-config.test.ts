/**
 * The `switchboard` CLI over a config file, as a real process: `check`
 * (every problem with its path, never a secret), `models` (the catalog), and
 * `serve switchboard.yaml` driven by the official OpenAI SDK, reloading the
 * file while it serves.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { Sim } from "@switchboard/sim"
import { spawn } from "node:child_process"
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import OpenAISdk from "openai"
import { type GatewayProcess, startGateway } from "./gatewayProcess.ts"

const root = fileURLToPath(new URL("..", import.meta.url))
const node = process.execPath
const bin = "packages/gateway/bin/switchboard.ts"
const dir = mkdtempSync(join(tmpdir(), "switchboard-cli-"))
const secret = "sk-cli-secret-Zq81vT0pLx3Nw7Rb"

const configText = (simUrl: string, route = "fast") => `
version: 1
providers:
  openai: { type: openai, apiKey: "${secret}", baseURL: "${simUrl}/openai/v1" }
  anthropic: { type: anthropic, apiKey: sk-ant-test, baseURL: "${simUrl}/anthropic" }
models:
  fast: { provider: openai, model: gpt-4o-mini, retry: { times: 1, base: "10 millis" }, defaults: { maxTokens: 64 } }
  claude: { provider: anthropic, model: claude-haiku-4-5, defaults: { maxTokens: 64 } }
routes:
  default: { fallback: [${route}, claude] }
  claude: { model: claude }
limits:
  budget: { limitUsd: 5, window: day }
gateway:
  keys:
    - { key: "\${TEAM_A_KEY:-team-a-key}", tenant: team-a }
    - { key: team-b-key, tenant: team-b, routes: [claude] }
`

/** Runs the CLI to its end (asynchronously: the simulator lives in this process's event loop). */
const run = (args: ReadonlyArray<string>) =>
  new Promise<{ readonly status: number | null; readonly stdout: string; readonly stderr: string }>((resolve) => {
    const child = spawn(node, [bin, ...args], { cwd: root, env: process.env, stdio: ["ignore", "pipe", "pipe"] })
    let stdout = ""
    let stderr = ""
    child.stdout!.on("data", (data: Buffer) => void (stdout += data.toString()))
    child.stderr!.on("data", (data: Buffer) => void (stderr += data.toString()))
    const timer = setTimeout(() => child.kill("SIGKILL"), 55_000)
    child.once("exit", (status) => {
      clearTimeout(timer)
      resolve({ status, stdout, stderr })
    })
  })

let sim: Sim.SimPromiseHandle

beforeAll(async () => {
  sim = await Sim.startPromise()
}, 30_000)

afterAll(async () => {
  await sim?.close()
})

describe("switchboard check / models", () => {
  it("check prints what a valid file builds, and no secret", async () => {
    const file = join(dir, "ok.yaml")
    writeFileSync(file, configText(sim.url))
    const result = await run(["check", file])
    assert.strictEqual(result.status, 0, result.stderr)
    assert.include(result.stdout, "default: fallback fast → claude")
    assert.include(result.stdout, "budget: $5 per day")
    assert.notInclude(result.stdout + result.stderr, secret)
  })

  it("check prints every problem with its path and exits 1", async () => {
    const file = join(dir, "broken.yaml")
    writeFileSync(
      file,
      configText(sim.url).replace("fallback: [fast, claude]", "fallback: [fast, claud]").replace(
        "model: claude-haiku-4-5,",
        "model: claude-haiku-4-5, retry: { times: -1 },"
      )
    )
    const result = await run(["check", file])
    assert.strictEqual(result.status, 1)
    assert.include(result.stderr, "2 problem(s)")
    assert.include(result.stderr, "models.claude.retry.times")
    assert.include(result.stderr, `routes.default.fallback[1]: unknown model "claud"; known: fast, claude`)
    assert.notInclude(result.stdout + result.stderr, secret)
  })

  it("models lists each provider's models with prices and capabilities", async () => {
    const file = join(dir, "models.yaml")
    writeFileSync(file, configText(sim.url))
    const result = await run(["models", file])
    assert.strictEqual(result.status, 0, result.stderr)
    assert.match(result.stdout, /gpt-4o-mini\s+\$0\.15\/M in, \$0\.6\/M out, window 128000/)
    assert.match(result.stdout, /claude-haiku-4-5\s+\$/)
    assert.notInclude(result.stdout, secret)
  })
})

const serve = (file: string): Promise<GatewayProcess> => startGateway(["serve", file, "--port", "0"])

describe("switchboard serve switchboard.yaml", () => {
  it("serves the file's routes with its keys, and reloads it while serving", async () => {
    const file = join(dir, "serve.yaml")
    writeFileSync(file, configText(sim.url))
    const gateway = await serve(file)
    try {
      const client = (key: string) => new OpenAISdk({ apiKey: key, baseURL: `${gateway.url}/v1`, maxRetries: 0 })
      const answer = await client("team-a-key").chat.completions.create({
        model: "default",
        messages: [{ role: "user", content: "hello" }]
      })
      assert.isAbove(answer.choices[0]!.message.content!.length, 0)
      assert.strictEqual(answer.model, "gpt-4o-mini")

      const refused = await client("team-b-key").chat.completions.create({
        model: "default",
        messages: [{ role: "user", content: "not my route" }]
      }).then(() => undefined, (error: { status?: number }) => error.status)
      assert.strictEqual(refused, 403)
      const unknownKey = await client("nope").chat.completions.create({
        model: "default",
        messages: [{ role: "user", content: "who?" }]
      }).then(() => undefined, (error: { status?: number }) => error.status)
      assert.strictEqual(unknownKey, 401)

      // Edit the file: the default route now starts with Claude. The running gateway swaps it in.
      writeFileSync(file, configText(sim.url, "claude"))
      let model = ""
      for (let i = 0; i < 50 && model !== "claude-haiku-4-5"; i++) {
        await new Promise((done) => setTimeout(done, 100))
        const after = await client("team-a-key").chat.completions.create({
          model: "default",
          messages: [{ role: "user", content: `after reload ${i}` }]
        })
        model = after.model
      }
      assert.strictEqual(model, "claude-haiku-4-5")
    } finally {
      gateway.child.kill("SIGTERM")
      assert.strictEqual(await gateway.exited, 0)
    }
  }, 60_000)
})

describe("two gateway processes sharing Redis", () => {
  it("enforce one per-key budget between them: together they never spend past it; /ready says when Redis is gone", async () => {
    const { startRedis } = await import("../packages/redis/test/redisServer.ts")
    const redis = await startRedis()
    const file = join(dir, "shared.yaml")
    writeFileSync(
      file,
      configText(sim.url).replace(
        "    - { key: team-b-key, tenant: team-b, routes: [claude] }",
        "    - { key: team-b-key, tenant: team-b, routes: [claude], budget: { limitUsd: 0.002, window: day, price: { provider: anthropic, model: claude-haiku-4-5 } } }"
      ) + `state:\n  redis: { url: "${redis.url}", prefix: "gw-test:" }\n`
    )
    const gateways = await Promise.all([serve(file), serve(file)])
    try {
      let spent = 0
      let refused = 0
      let answered = 0
      await Promise.all(gateways.map(async (gateway) => {
        const client = new OpenAISdk({ apiKey: "team-b-key", baseURL: `${gateway.url}/v1`, maxRetries: 0 })
        for (let i = 0; i < 25; i++) {
          const response = await client.chat.completions.create({
            model: "claude",
            max_tokens: 64,
            messages: [{ role: "user", content: `shared budget ${i}` }]
          }).withResponse().then(
            ({ response }) => ({ cost: Number(response.headers.get("x-switchboard-cost-usd") ?? "0"), status: 200 }),
            (error: { status?: number }) => ({ cost: 0, status: error.status ?? 0 })
          )
          if (response.status === 200) {
            answered++
            spent += response.cost
          } else if (response.status === 429) refused++
        }
      }))
      assert.isAbove(answered, 0)
      assert.isAbove(refused, 0, "the shared key budget runs out")
      assert.isAtMost(spent, 0.002 + 1e-9, "two gateways together stay within the key's budget")

      // GET /ready pings Redis: ready while it answers, not ready (503) once it is gone.
      const ready = () => fetch(`${gateways[0]!.url}/ready`).then((response) => response.status)
      assert.strictEqual(await ready(), 200)
      await redis.stop()
      let status = await ready()
      for (let tries = 0; status === 200 && tries < 50; tries++) {
        await new Promise((resolve) => setTimeout(resolve, 100))
        status = await ready()
      }
      assert.strictEqual(status, 503, "an instance that cannot reach Redis is not ready")
    } finally {
      for (const gateway of gateways) gateway.child.kill("SIGTERM")
      await Promise.all(gateways.map((gateway) => gateway.exited))
      await redis.stop()
    }
  }, 90_000)
})
