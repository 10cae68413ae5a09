/**
 * `pnpm chaos` — nothing lost under faults. Runs N requests (default 20,000)
 * at concurrency 128 through the demo stack while the simulator injects a
 * seeded mix of faults and outages, then prints the invariants and exits
 * non-zero when one breaks.
 *
 *   pnpm chaos [--requests 20000] [--concurrency 128] [--seed 42] [--deadline-ms 2000]
 *              [--cpu-hog N] [--hog-window start:duration] [--timeline]
 *
 * `--cpu-hog N` starts N busy worker processes for part of the run (CPU
 * contention as a fault), by default from 10 % of the requests for 35 % of
 * them. `--hog-window` moves it: fractions of the requests (`0.2:0.3`) or
 * seconds on the clock (`5s:20s`). `--timeline` prints the run interval by
 * interval (event-loop delay, outcomes, attempt failures, breaker changes).
 */
import { Effect } from "effect"
import { parseArgs } from "node:util"
import { type HogWindow, runChaos } from "./chaos/run.ts"

const { values } = parseArgs({
  options: {
    requests: { type: "string", default: "20000" },
    concurrency: { type: "string", default: "128" },
    seed: { type: "string", default: "42" },
    "deadline-ms": { type: "string", default: "2000" },
    "cpu-hog": { type: "string", default: "0" },
    "hog-window": { type: "string" },
    timeline: { type: "boolean", default: false }
  }
})
const int = (name: string, value: string | undefined, min: number, max: number) => {
  const n = Number(value)
  if (!Number.isInteger(n) || n < min || n > max) {
    console.error(`chaos: --${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}`)
    process.exit(2)
  }
  return n
}
const hogWindow = (value: string | undefined): HogWindow | undefined => {
  if (value === undefined) return undefined
  const seconds = /^(\d+(?:\.\d+)?)s:(\d+(?:\.\d+)?)s$/.exec(value)
  if (seconds) return { unit: "ms", start: Number(seconds[1]) * 1000, duration: Number(seconds[2]) * 1000 }
  const fractions = /^(\d*\.?\d+):(\d*\.?\d+)$/.exec(value)
  if (fractions && Number(fractions[1]) + Number(fractions[2]) <= 1 && Number(fractions[2]) > 0) {
    return { unit: "requests", start: Number(fractions[1]), duration: Number(fractions[2]) }
  }
  console.error(
    `chaos: --hog-window must be fractions of the requests "start:duration" (start + duration <= 1, e.g. 0.1:0.35) or seconds "5s:20s", got ${
      JSON.stringify(value)
    }`
  )
  return process.exit(2)
}
const options = {
  requests: int("requests", values.requests, 100, 1_000_000),
  concurrency: int("concurrency", values.concurrency, 1, 4096),
  seed: int("seed", values.seed, 0, 2 ** 31),
  deadlineMs: int("deadline-ms", values["deadline-ms"], 100, 600_000),
  cpuHog: int("cpu-hog", values["cpu-hog"], 0, 64),
  hogWindow: hogWindow(values["hog-window"])
}

console.log(
  `chaos: ${options.requests} requests at concurrency ${options.concurrency}, seed ${options.seed}${
    options.cpuHog > 0 ? `, ${options.cpuHog} CPU hogs` : ""
  }`
)
const report = await Effect.runPromise(runChaos({ ...options, progress: (line) => console.log(line) }))
if (values.timeline) {
  console.log("\ntimeline")
  for (const line of report.timeline) console.log(`  ${line}`)
}
console.log(`\n${report.succeeded} succeeded, ${report.requests - report.succeeded} failed with a typed error in ${(report.durationMs / 1000).toFixed(1)} s (${Math.round(report.requests / (report.durationMs / 1000))} req/s)`)
console.log(`failures: ${Object.entries(report.failures).map(([tag, n]) => `${tag} ${n}`).join(", ") || "none"}`)
console.log("\ninvariants")
for (const invariant of report.invariants) {
  console.log(`  ${invariant.ok ? "ok  " : "FAIL"}  ${invariant.name} — ${invariant.detail}`)
}
console.log(report.ok ? "\nchaos: every invariant held" : "\nchaos: AN INVARIANT BROKE")
process.exit(report.ok ? 0 : 1)
