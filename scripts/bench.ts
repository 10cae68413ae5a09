/**
 * `pnpm bench` — Switchboard's speed against the raw SDK, measured side by
 * side in one run, against two upstreams, each in its own process:
 *
 * - the minimal upstream (`scripts/bench/upstream.ts`: a tiny `node:http`
 *   server answering a fixed chat.completion or SSE stream, keep-alive), which
 *   shows what the client itself costs — the targets are read here;
 * - the simulator (zero simulated latency), whose own cost dilutes the ratios.
 *
 * Variants, each in a worker process of its own so CPU time and peak RSS are
 * its own: `fetch` (a bare POST), `sdk` (the raw `openai` SDK, the baseline),
 * `sdk-signal` (the SDK given an abort signal per call), `sdk-undicifetch` (the
 * SDK over `UndiciFetch`, the transport the leaf uses), `layer` (`OpenAI.model`
 * alone), `router` (a priority `Router` over two leaves), `stack-miss` /
 * `stack-hit` (the demo's full stack — cache, budget, rate limit, fallback,
 * breaker, retry — every request a cache miss / hit); and, against the
 * minimal upstream only, the other three providers' leaves each beside its own
 * SDK (`anthropic-sdk` / `anthropic-layer`, `google-sdk` / `google-layer`,
 * `bedrock-sdk` / `bedrock-layer`: the raw SDK, retries off, and
 * `Anthropic.model`, `Google.model`, `Bedrock.model` alone), their ratios to
 * their own SDK. Each at concurrency 1
 * and 64, whole and streaming (time to first part). For each such table
 * every variant's worker starts once and makes `--warmup` calls (the JIT's
 * steady state); then `--rounds` interleaved rounds (three times as many, at
 * most 15, for the OpenAI variants at c=1) each ask every worker in turn for
 * one block of `--requests` calls at c=1 and four times as many at c=64
 * (where they take a quarter of the time, and a short run's CPU per call
 * moves with the machine), after a tenth as many unmeasured ones. The
 * variants' order is reversed every other round, so a drift of the machine
 * weighs on both sides of a ratio, and the two blocks a ratio pairs run
 * seconds apart; each figure is the median of its rounds.
 * Then in process (no HTTP): the stack over test providers, a cache hit,
 * the Router micro-benchmark (`scripts/bench/router.ts`), what each combinator adds to a call and a stream
 * (`scripts/bench/layers.ts`), what the OpenAI leaf adds to its SDK with no
 * socket (`scripts/bench/leaf.ts`), and memory across 1,000,000 calls.
 *
 * Prints the table and writes `bench/RESULTS.md` and `bench/ratios.svg`.
 *
 *   pnpm bench [--requests 2000] [--warmup 2000] [--rounds 5] [--sim-rounds 1] [--rss-requests 1000000] [--quick]
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process"
import { mkdirSync, writeFileSync } from "node:fs"
import * as Http from "node:http"
import { cpus, loadavg } from "node:os"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"
import type { Measurement } from "./bench/measure.ts"
import { providerLeaves, render } from "./bench/report.ts"

const { values } = parseArgs({
  options: {
    requests: { type: "string", default: "2000" },
    "rss-requests": { type: "string", default: "1000000" },
    quick: { type: "boolean", default: false },
    warmup: { type: "string", default: "2000" },
    rounds: { type: "string", default: "5" },
    "sim-rounds": { type: "string", default: "1" }
  }
})
const quick = values.quick === true
/** A whole-number option within [min, max], its default when absent; anything else stops the run, naming it. */
const option = (name: keyof typeof values, min: number, max: number): number => {
  const given = values[name]
  const n = Number(given)
  if (typeof given !== "string" || !Number.isInteger(n) || n < min || n > max) {
    console.error(`bench: --${name} must be a whole number from ${min} to ${max}, got ${JSON.stringify(given)}`)
    process.exit(2)
  }
  return n
}
// Each HTTP variant runs `rounds` times, interleaved with the others, and the median round is kept:
// on a shared 2-core machine one run of a variant swings by ±15%.
const rounds = quick ? 1 : option("rounds", 1, 9)
const simRounds = quick ? 1 : option("sim-rounds", 1, 9)
// One call at a time (c=1) a variant's 2,000 calls take ~1 s, and a shared machine's noise over so short a
// stretch moves its p50 by ±30 %: the stack's own variants get three times the rounds there (at most 15).
const soloRounds = quick ? 1 : Math.min(15, rounds * 3)
const requests = quick ? 300 : option("requests", 200, 100_000)
// At c=64 a run of 2,000 calls lasts ~1 s: four times as many calls there (they take a quarter of the time that
// c=1's do), so each round measures a stretch as long as c=1's. Its rounds still spread by ±150 µs of CPU a call
// with the machine's other work: only the median across rounds means anything.
const requestsAt = (concurrency: number) => concurrency === 1 ? requests : 4 * requests
// Calls each worker makes before it measures: with 500, both the SDK and the stack spent ~100 µs a call more at c=64
// than with 3,000 (the JIT still compiling on its background threads, which count in the process's CPU time).
const warmup = quick ? 300 : option("warmup", 0, 100_000)
// Calls a waiting worker makes again before each block, unmeasured: the caches it lost while the others ran.
const blockWarmup = (concurrency: number) => Math.min(warmup, Math.round(requestsAt(concurrency) / 10))
const rssRequests = quick ? 100_000 : option("rss-requests", 10_000, 5_000_000)
const worker = fileURLToPath(new URL("./bench/worker.ts", import.meta.url))
const load = () => loadavg().map((n) => n.toFixed(1)).join(" ")
const loadAtStart = load()
const startedAt = performance.now()

/** Starts a server process that prints `listening on http://…`, and stops it when this process exits. */
const startServer = async (label: string, script: string, args: ReadonlyArray<string>): Promise<string> => {
  const child = spawn(process.execPath, [fileURLToPath(new URL(script, import.meta.url)), ...args], {
    stdio: ["pipe", "pipe", "inherit"]
  })
  process.on("exit", () => child.kill("SIGTERM"))
  return new Promise<string>((resolve, reject) => {
    let buffer = ""
    const timer = setTimeout(() => reject(new Error(`the ${label} did not start within 15 s`)), 15_000)
    child.stdout!.on("data", (data: Buffer) => {
      buffer += data.toString()
      const match = /listening on (http:\/\/[\d.]+:\d+)/.exec(buffer)
      if (match) {
        clearTimeout(timer)
        resolve(match[1]!)
      }
    })
    child.once("exit", (code) => reject(new Error(`the ${label} exited with ${code}`)))
  })
}

const simUrl = await startServer("simulator", "../packages/sim/bin/switchboard-sim.ts", ["--port", "0"])
const upstreamUrl = await startServer("minimal upstream", "./bench/upstream.ts", ["--port", "0"])

/** The workers up at any time, stopped if this process exits first. */
const workers = new Set<ChildProcess>()
process.on("exit", () => {
  for (const child of workers) child.kill("SIGTERM")
})

/** A worker that stays up for a whole table (`worker.ts serve`), warmed up once, measuring one block per ask. */
interface Served {
  readonly block: (requests: number, warmup: number) => Promise<Measurement>
  readonly stop: () => void
}

const serve = (args: ReadonlyArray<string>): Promise<Served> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--expose-gc", worker, "serve", ...args], { stdio: ["ignore", "inherit", "pipe", "ipc"] })
    let stderr = ""
    child.stderr!.on("data", (data: Buffer) => (stderr += data.toString()))
    let waiting: { readonly resolve: (m: Measurement) => void; readonly reject: (e: Error) => void } | undefined
    let timer: ReturnType<typeof setTimeout> | undefined
    // Once the worker is gone every later ask fails with why, also when it died while it waited.
    let failed: Error | undefined
    const fail = (why: string) => {
      failed ??= new Error(`bench worker serve ${args.join(" ")} ${why}:\n${stderr}`)
      clearTimeout(timer)
      if (waiting !== undefined) waiting.reject(failed)
      else reject(failed)
      waiting = undefined
    }
    child.once("exit", (code) => fail(`exited with ${code}`))
    const stop = () => {
      child.removeAllListeners("exit")
      workers.delete(child)
      child.disconnect()
    }
    workers.add(child)
    const ask = (what: string, ms: number) => {
      clearTimeout(timer)
      timer = setTimeout(() => {
        fail(`did not ${what} within ${ms / 1000} s`)
        child.kill("SIGTERM")
      }, ms)
    }
    ask("warm up", 600_000)
    child.on("message", (message: Measurement | { readonly ready: true }) => {
      clearTimeout(timer)
      if ("ready" in message) {
        resolve({
          block: (requests, warmup) =>
            new Promise((resolveBlock, rejectBlock) => {
              if (failed !== undefined) return rejectBlock(failed)
              waiting = { resolve: resolveBlock, reject: rejectBlock }
              ask("measure a block", 600_000)
              child.send({ requests, warmup })
            }),
          stop
        })
        return
      }
      const current = waiting
      waiting = undefined
      current?.resolve(message)
    })
  })

const runWorker = (args: ReadonlyArray<string>): Measurement & Record<string, unknown> => {
  const result = spawnSync(process.execPath, ["--expose-gc", worker, ...args], { encoding: "utf8", timeout: 600_000 })
  if (result.status !== 0) throw new Error(`bench worker ${args.join(" ")} failed:\n${result.stderr}`)
  const last = result.stdout.trim().split("\n").pop()!
  return JSON.parse(last)
}

/**
 * The minimal upstream's CPU time, request count and connections accepted so
 * far (this one included: each read is on a connection of its own, closed
 * after it, so two reads bracket exactly the connections the client opened
 * in between, plus the second read's own).
 */
const upstreamStats = (): Promise<{ readonly cpuUs: number; readonly requests: number; readonly connections: number }> =>
  new Promise((resolve, reject) => {
    Http.get(`${upstreamUrl}/stats`, { agent: false }, (res) => {
      const parts: Array<Buffer> = []
      res.on("data", (part: Buffer) => parts.push(part))
      res.on("end", () => resolve(JSON.parse(Buffer.concat(parts).toString("utf8"))))
      res.on("error", reject)
    }).on("error", reject)
  })

console.log(
  `bench: ${requests} requests per variant at c=1, ${requestsAt(64)} at c=64, after ${warmup}; minimal upstream ${upstreamUrl}, simulator ${simUrl}; ${cpus().length} cores; node ${process.version}; load average ${loadAtStart}`
)
const http: Array<Measurement> = []
const median = (runs: ReadonlyArray<Measurement>): Measurement => {
  const sorted = [...runs].sort((a, b) => a.p50Ms - b.p50Ms)
  return sorted[Math.floor(sorted.length / 2)]!
}
// `fetch` and `sdk-signal` are reference lines, measured whole only; `--quick` keeps the minimal upstream.
const views = [
  {
    upstream: "minimal",
    url: upstreamUrl,
    rounds,
    solo: true,
    variants: ["fetch", "sdk", "sdk-signal", "sdk-undicifetch", "layer", "router", "stack-miss"]
  },
  // The other providers' leaves, each pair interleaved with the others in every round (ratios to each one's own SDK).
  { upstream: "minimal", url: upstreamUrl, rounds, solo: false, variants: providerLeaves.flatMap((p) => [p.sdk, p.layer]) },
  ...(quick ? [] : [{ upstream: "sim", url: simUrl, rounds: simRounds, solo: false, variants: ["sdk", "layer", "stack-miss", "stack-hit"] }])
] as const
const referenceOnly = new Set(["fetch", "sdk-signal"])
for (const view of views) {
  for (const stream of [false, true]) {
    for (const concurrency of [1, 64]) {
      const variants = view.variants.filter((v) =>
        !(stream && referenceOnly.has(v)) && !(quick && referenceOnly.has(v))
      )
      const runs = new Map<string, Array<Measurement>>(variants.map((v) => [v, []]))
      const viewRounds = concurrency === 1 && view.solo ? soloRounds : view.rounds
      // Each variant's worker is started and warmed up once for the table, one after another, and then waits
      // between its blocks: a round is one block of each, so the blocks a ratio pairs run seconds apart.
      const served = new Map<string, Served>()
      for (const variant of variants) {
        served.set(variant, await serve([variant, view.url, String(concurrency), stream ? "stream" : "whole", String(warmup)]))
      }
      for (let round = 0; round < viewRounds; round++) {
        // Every other round runs the variants in reverse, so a drift of the machine over a round weighs on both
        // sides of a ratio (the baseline runs first in one round, last in the next).
        for (const variant of round % 2 === 0 ? variants : [...variants].reverse()) {
          const before = view.upstream === "minimal" ? await upstreamStats() : undefined
          const m = await served.get(variant)!.block(requestsAt(concurrency), blockWarmup(concurrency))
          const after = view.upstream === "minimal" ? await upstreamStats() : undefined
          const upstreamCpuUsPerRequest = before !== undefined && after !== undefined && after.requests > before.requests + 1
            ? (after.cpuUs - before.cpuUs) / (after.requests - before.requests - 1)
            : undefined
          // Connections the client opened (the second read's own taken off): a pool that keeps them opens ~c.
          const upstreamConnections = before !== undefined && after !== undefined
            ? after.connections - before.connections - 1
            : undefined
          runs.get(variant)!.push({
            ...m,
            upstream: view.upstream,
            ...(upstreamCpuUsPerRequest !== undefined ? { upstreamCpuUsPerRequest } : {}),
            ...(upstreamConnections !== undefined ? { upstreamConnections } : {})
          })
        }
      }
      for (const worker of served.values()) worker.stop()
      for (const variant of variants) {
        const m = median(runs.get(variant)!)
        http.push({ ...m, rounds: runs.get(variant)! })
        console.log(
          `  ${view.upstream.padEnd(7)} ${variant.padEnd(15)} c=${String(concurrency).padEnd(2)} ${stream ? "stream" : "whole "}  ${
            m.rps.toFixed(0).padStart(6)
          } req/s  p50 ${m.p50Ms.toFixed(2)} ms  p99 ${m.p99Ms.toFixed(2)} ms  cpu ${m.cpuUsPerRequest.toFixed(0)} µs/req  rss ${
            m.peakRssMb.toFixed(0)
          } MB${m.upstreamCpuUsPerRequest !== undefined ? `  upstream cpu ${m.upstreamCpuUsPerRequest.toFixed(0)} µs/req` : ""}${
            m.upstreamConnections !== undefined ? `  connections ${m.upstreamConnections}` : ""
          }${
            m.failures > 0 ? `  FAILURES ${m.failures}` : ""
          }`
        )
      }
    }
  }
}

// In process, each variant runs in interleaved rounds too (a single run moves ±20 % on a shared machine);
// the round with the median CPU per call is kept, every round beside it.
const inProcessCount = quick ? 50_000 : 200_000
const inProcessRounds = quick ? 2 : 5
const inProcessNames = ["test-leaf", "test-stack-miss", "test-stack-hit"]
const inProcessRuns = new Map(inProcessNames.map((variant) => [variant, [] as Array<Measurement>]))
for (let round = 0; round < inProcessRounds; round++) {
  for (const variant of round % 2 === 0 ? inProcessNames : [...inProcessNames].reverse()) {
    const m = runWorker(["inprocess", variant, String(inProcessCount)])
    console.log(`  ${variant.padEnd(16)} in process  round ${round + 1}  ${m.cpuUsPerRequest.toFixed(2)} µs/req`)
    inProcessRuns.get(variant)!.push(m)
  }
}
const inProcess = inProcessNames.map((variant): Measurement => {
  const runs = inProcessRuns.get(variant)!
  const sorted = [...runs].sort((a, b) => a.cpuUsPerRequest - b.cpuUsPerRequest)
  return { ...sorted[Math.floor(sorted.length / 2)]!, rounds: runs }
})
const rss = runWorker(["rss", String(rssRequests)]) as unknown as {
  readonly requests: number
  readonly baselineMb: number
  readonly finalMb: number
  readonly growthMb: number
  readonly heapBaselineMb: number
  readonly heapFinalMb: number
  readonly cpuUsPerRequest: number
}
console.log(
  `  rss: ${rss.requests} in-process requests, rss ${rss.baselineMb.toFixed(1)} → ${rss.finalMb.toFixed(1)} MB (growth ${
    rss.growthMb.toFixed(1)
  } MB), live heap after GC ${rss.heapBaselineMb.toFixed(1)} → ${rss.heapFinalMb.toFixed(1)} MB`
)

// The Router micro-benchmark (in process, scripted leaves), its table kept as printed.
const routerArgs = quick ? ["--calls", "10000", "--rounds", "1", "--warmup", "5000"] : ["--calls", "30000", "--rounds", "3", "--warmup", "10000"]
const routerRun = spawnSync(process.execPath, [fileURLToPath(new URL("./bench/router.ts", import.meta.url)), ...routerArgs], {
  encoding: "utf8",
  timeout: 300_000
})
const router = routerRun.status === 0 ? routerRun.stdout.trim() : `router.ts failed:\n${routerRun.stderr}`
console.log(`\n${router}`)

// What each combinator adds (generate and stream) and what the OpenAI leaf adds to its SDK with no socket,
// in process; their tables kept as printed.
const micro = (script: string, args: ReadonlyArray<string>): string => {
  const run = spawnSync(process.execPath, [fileURLToPath(new URL(`./bench/${script}`, import.meta.url)), ...args], {
    encoding: "utf8",
    timeout: 600_000
  })
  const out = run.status === 0 ? run.stdout.trim() : `${script} ${args.join(" ")} failed:\n${run.stderr}`
  console.log(`\n${out}`)
  return out
}
const scale = (full: number, short: number) => String(quick ? short : full)
const layers = [
  micro("layers.ts", ["--calls", scale(100_000, 20_000), "--rounds", scale(3, 1)]),
  micro("layers.ts", ["--calls", scale(10_000, 3_000), "--rounds", scale(3, 1), "--stream"])
].join("\n\n")
const leaf = [
  micro("leaf.ts", ["--calls", scale(10_000, 3_000), "--rounds", scale(5, 1)]),
  micro("leaf.ts", ["--calls", scale(10_000, 3_000), "--rounds", scale(5, 1), "--stream"])
].join("\n\n")

const { markdown, svg, summary } = render({
  http,
  inProcess,
  rss,
  router,
  layers,
  leaf,
  requests,
  requestsAt64: requestsAt(64),
  warmup,
  rounds,
  soloRounds,
  simRounds,
  node: process.version,
  cores: cpus().length,
  load: { start: loadAtStart, end: load() },
  minutes: (performance.now() - startedAt) / 60_000
})
const dir = fileURLToPath(new URL("../bench/", import.meta.url))
mkdirSync(dir, { recursive: true })
writeFileSync(`${dir}RESULTS.md`, markdown)
writeFileSync(`${dir}ratios.svg`, svg)
console.log(`\n${summary}\n\nwrote bench/RESULTS.md and bench/ratios.svg`)
process.exit(0)
