/**
 * What shared state costs per call: the full stack (Budget + CircuitBreaker +
 * RateLimit + response cache miss) over the scripted test leaf, once on the
 * memory stores and once on `Redis.layer` against a real `redis-server`
 * started here on a free loopback port. Each variant makes `calls`
 * sequential calls after a warm-up, and the wall time of each call is
 * recorded; the added latency is the Redis median (and p99) minus the memory
 * one. A concurrent run (`--concurrency`, default 32) reports throughput.
 *
 * Usage: `NODE_OPTIONS=--conditions=@switchboard/source node scripts/bench/redis.ts [--calls 2000] [--concurrency 32] [--fsync everysec|always]`
 */
import { Budget, CircuitBreaker, Llm, RateLimit } from "@switchboard/core"
import type { LLM } from "@switchboard/core"
import { Redis } from "@switchboard/redis"
import { Effect, Layer } from "effect"
import { performance } from "node:perf_hooks"
import { startRedis } from "../../packages/redis/test/redisServer.ts"

const args = process.argv.slice(2)
const flag = (name: string): string | undefined => {
  const at = args.indexOf(name)
  return at === -1 ? undefined : args[at + 1]
}
const calls = Number(flag("--calls") ?? 2_000)
const concurrency = Number(flag("--concurrency") ?? 32)
// Redis's own AOF default is everysec; `--fsync always` makes every budget write durable before it answers.
const fsync = flag("--fsync") === "always" ? "always" : "everysec"
const mini = { provider: "openai", model: "gpt-4o-mini" }

const leaf = () => Llm.layerTest({ ...mini, record: false, steps: [{ text: "ok", usage: { inputTokens: 8, outputTokens: 4 } }] })

/** Budget + CircuitBreaker + RateLimit over `inner`. */
const full = <E, R>(inner: Layer.Layer<LLM, E, R>) =>
  inner.pipe(
    CircuitBreaker.layer({ failureThreshold: 5 }),
    RateLimit.layer({ requests: { limit: 1_000_000_000, window: "1 minute" }, onExceeded: "fail", key: "bench" }),
    Budget.layer({ limitUsd: 1_000_000, window: "day", price: mini, name: "bench" })
  )

interface Row {
  readonly label: string
  readonly median: number
  readonly p99: number
  readonly mean: number
  readonly perSecond: number
}

const measure = <E>(stack: Layer.Layer<LLM, E>, label: string): Effect.Effect<Row, unknown> =>
  Effect.gen(function*() {
    const llm = yield* Llm.LLM
    let n = 0
    // A fresh message per call: every call is a cache miss, as a new prompt would be.
    const ask = () => ({ messages: [{ role: "user" as const, content: `q${n++}` }], maxTokens: 8 })
    for (let i = 0; i < Math.min(500, calls); i++) yield* llm.generate(ask())
    const times: Array<number> = []
    for (let i = 0; i < calls; i++) {
      const start = performance.now()
      yield* llm.generate(ask())
      times.push(performance.now() - start)
    }
    times.sort((a, b) => a - b)
    const q = (p: number) => times[Math.min(times.length - 1, Math.floor(p * times.length))]!
    const started = performance.now()
    yield* Effect.forEach(Array.from({ length: calls }), () => llm.generate(ask()), { concurrency, discard: true })
    const perSecond = calls / ((performance.now() - started) / 1000)
    return { label, median: q(0.5), p99: q(0.99), mean: times.reduce((a, b) => a + b, 0) / times.length, perSecond }
  }).pipe(Effect.provide(stack))

const server = await startRedis({ fsync })
try {
  const redis = Redis.layer({ url: server.url, prefix: "bench:" })
  const rows: ReadonlyArray<Row> = await Effect.runPromise(Effect.all([
    measure(full(leaf()), "memory stores"),
    measure(Layer.provide(full(leaf()), redis), "Redis stores"),
    measure(Layer.provide(full(leaf().pipe(Redis.responseCache({ ttl: "1 minute", when: "always" }))), redis), "Redis stores + Redis cache (miss)")
  ]))
  const base = rows[0]!
  console.log(`full stack, ${calls} sequential calls each (ms per call), then ${calls} at concurrency ${concurrency}; appendfsync ${fsync}`)
  console.log("| variant | median | p99 | mean | added (median) | calls/s concurrent |")
  console.log("|---|---|---|---|---|---|")
  for (const row of rows) {
    console.log(
      `| ${row.label} | ${row.median.toFixed(3)} | ${row.p99.toFixed(3)} | ${row.mean.toFixed(3)} | ${
        (row.median - base.median).toFixed(3)
      } | ${Math.round(row.perSecond)} |`
    )
  }
} finally {
  await server.stop()
}
