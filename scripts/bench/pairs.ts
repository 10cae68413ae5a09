/**
 * Each provider leaf against its own SDK, `--runs` interleaved runs at one
 * concurrency and mode against the minimal upstream (started here), every
 * variant a fresh worker process: median [min–max] of the leaf's p50 ratio to
 * its SDK and of its added CPU per request (µs), each run's pair measured
 * back to back. For developing; `pnpm bench` reports the same pairs.
 *
 * Usage: `node scripts/bench/pairs.ts [--runs 3] [--requests 2000] [--concurrency 64] [--stream] [--only anthropic]`
 */
import { spawn, spawnSync } from "node:child_process"
import { fileURLToPath } from "node:url"
import { flag } from "./args.ts"
import type { Measurement } from "./measure.ts"
import { providerLeaves } from "./report.ts"

const runs = Number(flag("--runs") ?? 3)
const requests = flag("--requests") ?? "2000"
const concurrency = flag("--concurrency") ?? "64"
const shape = process.argv.includes("--stream") ? "stream" : "whole"
const only = flag("--only")
const pairs = providerLeaves.filter((p) => only === undefined || p.provider === only)

const upstream = spawn(process.execPath, [fileURLToPath(new URL("./upstream.ts", import.meta.url)), "--port", "0"], {
  stdio: ["pipe", "pipe", "inherit"]
})
process.on("exit", () => upstream.kill("SIGTERM"))
const url = await new Promise<string>((resolve) => {
  let buffer = ""
  upstream.stdout!.on("data", (data: Buffer) => {
    buffer += data.toString()
    const match = /listening on (http:\/\/[\d.]+:\d+)/.exec(buffer)
    if (match) resolve(match[1]!)
  })
})
const worker = fileURLToPath(new URL("./worker.ts", import.meta.url))
const run = (variant: string): Measurement => {
  const result = spawnSync(process.execPath, ["--expose-gc", worker, "http", variant, url, concurrency, shape, requests], {
    encoding: "utf8"
  })
  if (result.status !== 0) throw new Error(`${variant} failed:\n${result.stderr}`)
  return JSON.parse(result.stdout.trim().split("\n").pop()!)
}
const stats = (xs: ReadonlyArray<number>, digits: number) => {
  const sorted = [...xs].sort((a, b) => a - b)
  return `${sorted[Math.floor(sorted.length / 2)]!.toFixed(digits)} [${sorted[0]!.toFixed(digits)}–${sorted.at(-1)!.toFixed(digits)}]`
}

const ratios = new Map<string, Array<number>>(pairs.map((p) => [p.provider, []]))
const added = new Map<string, Array<number>>(pairs.map((p) => [p.provider, []]))
for (let i = 0; i < runs; i++) {
  for (const p of pairs) {
    const sdk = run(p.sdk)
    const leaf = run(p.layer)
    ratios.get(p.provider)!.push(leaf.p50Ms / sdk.p50Ms)
    added.get(p.provider)!.push(leaf.cpuUsPerRequest - sdk.cpuUsPerRequest)
    console.log(
      `run ${i + 1} ${p.provider.padEnd(9)} sdk p50 ${sdk.p50Ms.toFixed(2)} ms ${sdk.cpuUsPerRequest.toFixed(0)} µs ${
        sdk.rps.toFixed(0)
      } req/s · leaf p50 ${leaf.p50Ms.toFixed(2)} ms ${leaf.cpuUsPerRequest.toFixed(0)} µs ${leaf.rps.toFixed(0)} req/s${
        sdk.failures + leaf.failures > 0 ? ` FAILURES ${sdk.failures}/${leaf.failures}` : ""
      }`
    )
  }
}
console.log(`\nc=${concurrency} ${shape}, ${requests} requests, ${runs} interleaved runs: median [min–max]`)
for (const p of pairs) {
  console.log(
    `${p.provider.padEnd(9)} p50 × SDK ${stats(ratios.get(p.provider)!, 2)}   added CPU µs/req ${stats(added.get(p.provider)!, 0)}`
  )
}
process.exit(0)
