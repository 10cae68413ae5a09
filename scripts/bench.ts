/**
 * `pnpm bench` — Switchboard's speed against the raw SDK, measured side by
 * side in one run. The simulator runs in its own process (zero simulated
 * latency) and every variant runs in a fresh worker process, so CPU time and
 * peak RSS are the variant's own:
 *
 * - `fetch`: a bare `fetch` POST; `sdk`: the raw `openai` SDK (the baseline);
 *   `layer`: `OpenAI.model` alone; `stack-miss` / `stack-hit`: the demo's
 *   full stack with every request a cache miss / a cache hit;
 * - in process (no HTTP): the same stack over test providers, to isolate
 *   the combinators' own CPU; a cache hit; RSS across 1,000,000 requests.
 *
 * Every HTTP variant runs `--rounds` times (default 3), interleaved, and the
 * median round is kept. Prints the table and writes `bench/RESULTS.md` and
 * `bench/ratios.svg`.
 *
 *   pnpm bench [--requests 3000] [--rounds 3] [--rss-requests 1000000] [--quick]
 */
import { spawn, spawnSync } from "node:child_process"
import { mkdirSync, writeFileSync } from "node:fs"
import { cpus } from "node:os"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"
import type { Measurement } from "./bench/measure.ts"
import { render } from "./bench/report.ts"

const { values } = parseArgs({
  options: {
    requests: { type: "string", default: "3000" },
    "rss-requests": { type: "string", default: "1000000" },
    quick: { type: "boolean", default: false },
    rounds: { type: "string", default: "3" }
  }
})
const quick = values.quick === true
// Each HTTP variant runs `rounds` times, interleaved with the others, and the median round is kept:
// on a shared 2-core machine one run of a variant swings by ±15%.
const rounds = quick ? 1 : Math.max(1, Math.min(9, Number(values.rounds) || 3))
const requests = quick ? 600 : Math.max(200, Math.min(100_000, Number(values.requests) || 3000))
const rssRequests = quick ? 100_000 : Math.max(10_000, Math.min(5_000_000, Number(values["rss-requests"]) || 1_000_000))
const self = fileURLToPath(import.meta.url)
const worker = fileURLToPath(new URL("./bench/worker.ts", import.meta.url))

// The simulator, in its own process.
const simBin = fileURLToPath(new URL("../packages/sim/bin/switchboard-sim.ts", import.meta.url))
const sim = spawn(process.execPath, [simBin, "--port", "0"], { stdio: ["ignore", "pipe", "inherit"] })
process.on("exit", () => sim.kill("SIGTERM"))
const url = await new Promise<string>((resolve, reject) => {
  let buffer = ""
  const timer = setTimeout(() => reject(new Error("the simulator did not start within 15 s")), 15_000)
  sim.stdout.on("data", (data: Buffer) => {
    buffer += data.toString()
    const match = /listening on (http:\/\/[\d.]+:\d+)/.exec(buffer)
    if (match) {
      clearTimeout(timer)
      resolve(match[1]!)
    }
  })
  sim.once("exit", (code) => reject(new Error(`the simulator exited with ${code}`)))
})

const runWorker = (args: ReadonlyArray<string>): Measurement & Record<string, unknown> => {
  const result = spawnSync(process.execPath, ["--expose-gc", worker, ...args], { encoding: "utf8", timeout: 600_000 })
  if (result.status !== 0) throw new Error(`bench worker ${args.join(" ")} failed:\n${result.stderr}`)
  const last = result.stdout.trim().split("\n").pop()!
  return JSON.parse(last)
}

console.log(`bench: ${requests} requests per variant against ${url}; ${cpus().length} cores; node ${process.version}`)
const http: Array<Measurement> = []
const variants = ["fetch", "sdk", "layer", "stack-miss", "stack-hit"]
const median = (runs: ReadonlyArray<Measurement>): Measurement => {
  const sorted = [...runs].sort((a, b) => a.p50Ms - b.p50Ms)
  return sorted[Math.floor(sorted.length / 2)]!
}
for (const stream of [false, true]) {
  for (const concurrency of [1, 64]) {
    const runs = new Map<string, Array<Measurement>>(variants.map((v) => [v, []]))
    for (let round = 0; round < rounds; round++) {
      for (const variant of variants) {
        runs.get(variant)!.push(runWorker(["http", variant, url, String(concurrency), stream ? "stream" : "whole", String(requests)]))
      }
    }
    for (const variant of variants) {
      const m = median(runs.get(variant)!)
      http.push(m)
      console.log(
        `  ${variant.padEnd(10)} c=${String(concurrency).padEnd(2)} ${stream ? "stream" : "whole "}  ${m.rps.toFixed(0).padStart(6)} req/s  p50 ${
          m.p50Ms.toFixed(2)
        } ms  p99 ${m.p99Ms.toFixed(2)} ms  cpu ${m.cpuUsPerRequest.toFixed(0)} µs/req  rss ${m.peakRssMb.toFixed(0)} MB${
          m.failures > 0 ? `  FAILURES ${m.failures}` : ""
        }`
      )
    }
  }
}

const inProcessCount = quick ? 50_000 : 200_000
const inProcess = ["test-leaf", "test-stack-miss", "test-stack-hit"].map((variant) => {
  const m = runWorker(["inprocess", variant, String(inProcessCount)])
  console.log(`  ${variant.padEnd(16)} in process  ${m.cpuUsPerRequest.toFixed(2)} µs/req`)
  return m
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

const { markdown, svg, summary } = render({ http, inProcess, rss, requests, rounds, url, node: process.version, cores: cpus().length })
const dir = fileURLToPath(new URL("../bench/", import.meta.url))
mkdirSync(dir, { recursive: true })
writeFileSync(`${dir}RESULTS.md`, markdown)
writeFileSync(`${dir}ratios.svg`, svg)
console.log(`\n${summary}\n\nwrote bench/RESULTS.md and bench/ratios.svg`)
void self
sim.kill("SIGTERM")
process.exit(0)
