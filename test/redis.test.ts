/**
 * Four OS processes share one Redis (started here on a free loopback port):
 * one budget under 4 × 1,000 concurrent calls, one circuit breaker, one rate
 * limit and one response cache. Each process is `test/redisWorker.ts` run
 * with node 24, started once and sent one scenario at a time.
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as readline from "node:readline"
import { fileURLToPath } from "node:url"
import { afterAll, assert, beforeAll, describe, it } from "vitest"
import { type RedisServer, startRedis } from "../packages/redis/test/redisServer.ts"

const worker = fileURLToPath(new URL("./redisWorker.ts", import.meta.url))

interface Worker {
  readonly child: ChildProcess
  readonly send: <A>(args: Record<string, unknown>) => Promise<A>
}

const startWorker = (): Promise<Worker> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--conditions=@switchboard/source", worker], { stdio: ["pipe", "pipe", "inherit"] })
    const waiting = new Map<number, { resolve: (a: never) => void; reject: (e: Error) => void }>()
    let nextId = 0
    child.on("error", reject)
    child.on("exit", (code) => {
      for (const w of waiting.values()) w.reject(new Error(`worker exited with ${code}`))
    })
    const self: Worker = {
      child,
      send: <A>(args: Record<string, unknown>) =>
        new Promise<A>((res, rej) => {
          const id = nextId++
          waiting.set(id, { resolve: res as (a: never) => void, reject: rej })
          child.stdin!.write(JSON.stringify({ id, url: server.url, ...args }) + "\n")
        })
    }
    readline.createInterface({ input: child.stdout! }).on("line", (line) => {
      // Log lines (e.g. a reclaim warning) share stdout with the answers: only JSON objects are answers.
      if (!line.startsWith("{")) return
      const message = JSON.parse(line) as { ready?: boolean; id?: number; result?: never; error?: string }
      if (message.ready === true) return resolve(self)
      const w = waiting.get(message.id!)
      if (w === undefined) return
      waiting.delete(message.id!)
      if (message.error !== undefined) w.reject(new Error(message.error))
      else w.resolve(message.result!)
    })
  })

let server: RedisServer
let workers: ReadonlyArray<Worker> = []
beforeAll(async () => {
  server = await startRedis()
  workers = await Promise.all([0, 1, 2, 3].map(startWorker))
}, 60_000)
afterAll(async () => {
  for (const w of workers) w.child.kill()
  await server.stop()
})

let run = 0
const prefix = () => `mp${process.pid}-${run++}:`

/** Runs a scenario in process `index` (0–3). */
const inProcess = <A>(index: number, args: Record<string, unknown>): Promise<A> => workers[index]!.send<A>(args)

const four = <A>(args: Record<string, unknown>) => Promise.all(workers.map((w) => w.send<A>(args)))

describe("Redis stores shared by four OS processes", () => {
  it("one budget: 4 × 1,000 concurrent calls with random failures never spend past the limit, and nothing stays reserved", async () => {
    const p = prefix()
    const limitUsd = 0.01
    const results = await four<{ ok: number; refused: number; failed: number; spent: number }>({
      scenario: "budget",
      prefix: p,
      calls: 1000,
      limitUsd
    })
    const spent = results.reduce((sum, r) => sum + r.spent, 0)
    const ok = results.reduce((sum, r) => sum + r.ok, 0)
    const refused = results.reduce((sum, r) => sum + r.refused, 0)
    const failed = results.reduce((sum, r) => sum + r.failed, 0)
    assert.strictEqual(ok + refused + failed, 4000)
    // The limit binds (most calls are refused) and is never passed.
    assert.isAbove(refused, 0)
    assert.isAbove(ok, 0)
    assert.isAtMost(spent, limitUsd * (1 + 1e-9))
    // Redis holds exactly what the processes report they spent, and no reservation.
    const record = await server.command("HMGET", `${p}b:r:shared:global`, "s", "r")
    const [, spentLine, , reservedLine] = record.split("\r\n")
    assert.closeTo(Number(record.split("\r\n")[2]), spent, 1e-12, `${spentLine} ${record}`)
    assert.strictEqual(Number(record.split("\r\n")[4]), 0, reservedLine)
  }, 60_000)

  it("a breaker opened by one process fails fast in the three others without a provider call", async () => {
    const p = prefix()
    // Three running instances have served the route (each made one call).
    const warmed = await Promise.all([1, 2, 3].map((i) => inProcess<{ text: string; providerCalls: number }>(i, { scenario: "breaker-warm", prefix: p })))
    for (const w of warmed) assert.deepStrictEqual(w, { text: "answered", providerCalls: 1 })
    const opener = await inProcess<{ tags: Array<string>; providerCalls: number }>(0, { scenario: "breaker-open", prefix: p })
    assert.strictEqual(opener.providerCalls, 3)
    assert.deepStrictEqual(opener.tags.slice(3), ["CircuitOpen", "CircuitOpen"])
    const others = await Promise.all([1, 2, 3].map((i) => inProcess<{ tag: string; providerCalls: number }>(i, { scenario: "breaker-check", prefix: p })))
    for (const other of others) {
      assert.strictEqual(other.tag, "CircuitOpen")
      // Still the one warm-up call: the open circuit answered, not the provider.
      assert.strictEqual(other.providerCalls, 1)
    }
  }, 60_000)

  it("one rate limit: the sum across four processes obeys it", async () => {
    const results = await four<{ ok: number }>({ scenario: "ratelimit", prefix: prefix(), calls: 30 })
    assert.strictEqual(results.reduce((sum, r) => sum + r.ok, 0), 40)
  }, 60_000)

  it("a cached answer in one process is a hit in another", async () => {
    const p = prefix()
    const first = await inProcess<{ text: string; cached: boolean; providerCalls: number }>(0, { scenario: "cache", prefix: p })
    assert.deepStrictEqual(first, { text: "cached answer", cached: false, providerCalls: 1 })
    const others = await Promise.all([1, 2, 3].map((i) => inProcess<typeof first>(i, { scenario: "cache", prefix: p })))
    for (const other of others) assert.deepStrictEqual(other, { text: "cached answer", cached: true, providerCalls: 0 })
  }, 60_000)

  // Last: it kills process 3.
  it("a process killed with reservations in flight: they are reclaimed after reservationTtl and written to the ledger", async () => {
    const p = prefix()
    assert.deepStrictEqual(await inProcess(3, { scenario: "budget-hang", prefix: p }), { held: 10 })
    workers[3]!.child.kill("SIGKILL")
    const ledger = async () => Number((await server.command("XLEN", `${p}b:ledger`)).slice(1))
    // A live process's calls reclaim what expired (on the Redis clock) as they reserve.
    for (let i = 0; i < 100 && (await ledger()) < 10; i++) {
      await inProcess(0, { scenario: "budget-one", prefix: p })
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    assert.strictEqual(await ledger(), 10)
    const held = (await server.command("HLEN", `${p}b:h:crash:global`)).trim()
    assert.strictEqual(held, ":0")
    const reserved = (await server.command("HGET", `${p}b:r:crash:global`, "r")).split("\r\n")[1]
    assert.strictEqual(Number(reserved), 0)
  }, 60_000)
})
