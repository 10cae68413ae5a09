/**
 * One benchmark variant in its own process (spawned by `scripts/bench.ts`);
 * prints its measurement as one JSON line. `serve` stays up instead: it
 * warms up once, says `{ ready: true }` over the IPC channel, then measures
 * one block of calls per `{ requests, warmup }` message it gets and sends each
 * block's measurement back, until the channel closes.
 *
 *   worker.ts http <variant> <url> <concurrency> <whole|stream> <requests> [warmup]
 *   worker.ts serve <variant> <url> <concurrency> <whole|stream> <warmup>
 *   worker.ts inprocess <variant> <requests>
 *   worker.ts rss <requests>
 */
import { Llm } from "@switchboard/core"
import { Effect } from "effect"
import { measure } from "./measure.ts"
import { type InProcessName, make, makeInProcess, type Name } from "./variants.ts"

const [mode, ...args] = process.argv.slice(2)

const inProcessRequest = (index: number, unique: boolean) => ({
  messages: [{ role: "user" as const, content: unique ? `In-process request ${index}` : "In-process request" }],
  maxTokens: 64,
  ...(unique ? {} : { temperature: 0 })
})

if (mode === "http") {
  const [variant, url, concurrency, shape, count, warmup] = args as [Name, string, string, string, string, string?]
  const call = await make(variant, url, shape === "stream")
  const m = await measure({
    variant,
    concurrency: Number(concurrency),
    stream: shape === "stream",
    requests: Number(count),
    warmup: warmup === undefined ? Math.min(500, Number(count)) : Number(warmup),
    call
  })
  console.log(JSON.stringify(m))
} else if (mode === "serve") {
  const [variant, url, concurrency, shape, warmup] = args as [Name, string, string, string, string]
  const send = process.send?.bind(process)
  if (send === undefined) throw new Error("worker.ts serve runs with an IPC channel (spawned by scripts/bench.ts)")
  const base = { variant, concurrency: Number(concurrency), stream: shape === "stream", call: await make(variant, url, shape === "stream") }
  await measure({ ...base, requests: 0, warmup: Number(warmup) })
  process.on("disconnect", () => process.exit(0))
  // One block at a time: the parent waits for each answer before it sends the next.
  process.on("message", (block: { readonly requests: number; readonly warmup: number }) => {
    void measure({ ...base, ...block }).then((m) => send(m))
  })
  send({ ready: true })
  await new Promise<never>(() => {})
} else if (mode === "inprocess") {
  const [variant, count] = args as [InProcessName, string]
  const n = Number(count)
  const runtime = await makeInProcess(variant)
  const unique = variant !== "test-stack-hit"
  // One Effect program runs the calls one after another, so per-call cost is the layer's own.
  const loop = (from: number, to: number) =>
    Effect.gen(function*() {
      for (let i = from; i < to; i++) yield* Llm.generate(inProcessRequest(i, unique))
    })
  await runtime.runPromise(loop(0, Math.min(20_000, n)))
  globalThis.gc?.()
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  await runtime.runPromise(loop(n, 2 * n))
  const elapsed = performance.now() - t0
  const cpu = process.cpuUsage(cpu0)
  console.log(JSON.stringify({
    variant,
    concurrency: 1,
    stream: false,
    requests: n,
    failures: 0,
    rps: n / (elapsed / 1000),
    p50Ms: 0,
    p99Ms: 0,
    cpuUsPerRequest: (cpu.user + cpu.system) / n,
    peakRssMb: process.resourceUsage().maxRSS / 1024
  }))
} else if (mode === "rss") {
  const n = Number(args[0])
  const runtime = await makeInProcess("test-stack-miss")
  const chunk = 50_000
  const run = (from: number) =>
    runtime.runPromise(Effect.gen(function*() {
      for (let i = from; i < from + chunk; i++) yield* Llm.generate(inProcessRequest(i, true))
    }))
  // Warm up past the cache's capacity, then measure memory after each chunk.
  await run(0)
  await run(chunk)
  globalThis.gc?.()
  const rssMb = () => process.memoryUsage().rss / 1024 / 1024
  const heapMb = () => process.memoryUsage().heapUsed / 1024 / 1024
  const baselineMb = rssMb()
  const heapBaselineMb = heapMb()
  const cpu0 = process.cpuUsage()
  let done = 0
  let finalMb = baselineMb
  while (done < n) {
    await run(2 * chunk + done)
    done += chunk
  }
  globalThis.gc?.()
  finalMb = rssMb()
  const heapFinalMb = heapMb()
  const cpu = process.cpuUsage(cpu0)
  console.log(JSON.stringify({
    requests: done,
    baselineMb,
    finalMb,
    growthMb: finalMb - baselineMb,
    heapBaselineMb,
    heapFinalMb,
    cpuUsPerRequest: (cpu.user + cpu.system) / done
  }))
} else {
  console.error(`unknown mode ${mode}`)
  process.exit(2)
}
process.exit(0)
