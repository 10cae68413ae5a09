/**
 * `pnpm chaos` — nothing lost under faults. Runs N requests (default 20,000)
 * at concurrency 128 through the demo stack while the simulator injects a
 * seeded mix of faults and outages, then prints the invariants and exits
 * non-zero when one breaks.
 *
 *   pnpm chaos [--requests 20000] [--concurrency 128] [--seed 42] [--deadline-ms 2000]
 */
import { Effect } from "effect"
import { parseArgs } from "node:util"
import { runChaos } from "./chaos/run.ts"

const { values } = parseArgs({
  options: {
    requests: { type: "string", default: "20000" },
    concurrency: { type: "string", default: "128" },
    seed: { type: "string", default: "42" },
    "deadline-ms": { type: "string", default: "2000" }
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
const options = {
  requests: int("requests", values.requests, 100, 1_000_000),
  concurrency: int("concurrency", values.concurrency, 1, 4096),
  seed: int("seed", values.seed, 0, 2 ** 31),
  deadlineMs: int("deadline-ms", values["deadline-ms"], 100, 600_000)
}

console.log(`chaos: ${options.requests} requests at concurrency ${options.concurrency}, seed ${options.seed}`)
const report = await Effect.runPromise(runChaos({ ...options, progress: (line) => console.log(line) }))
console.log(`\n${report.succeeded} succeeded, ${report.requests - report.succeeded} failed with a typed error in ${(report.durationMs / 1000).toFixed(1)} s (${Math.round(report.requests / (report.durationMs / 1000))} req/s)`)
console.log(`failures: ${Object.entries(report.failures).map(([tag, n]) => `${tag} ${n}`).join(", ") || "none"}`)
console.log("\ninvariants")
for (const invariant of report.invariants) {
  console.log(`  ${invariant.ok ? "ok  " : "FAIL"}  ${invariant.name} — ${invariant.detail}`)
}
console.log(report.ok ? "\nchaos: every invariant held" : "\nchaos: AN INVARIANT BROKE")
process.exit(report.ok ? 0 : 1)
