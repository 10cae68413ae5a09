/**
 * Turns the measurements of `pnpm bench` into `bench/RESULTS.md` (tables,
 * ratios to the raw SDK, targets) and `bench/ratios.svg` (a bar chart).
 */
import type { Measurement } from "./measure.ts"

/** Everything one bench run measured. */
export interface Results {
  readonly http: ReadonlyArray<Measurement>
  readonly inProcess: ReadonlyArray<Measurement>
  readonly rss: {
    readonly requests: number
    readonly baselineMb: number
    readonly finalMb: number
    readonly growthMb: number
    readonly heapBaselineMb: number
    readonly heapFinalMb: number
  }
  readonly requests: number
  readonly rounds: number
  readonly url: string
  readonly node: string
  readonly cores: number
}

interface Target {
  readonly name: string
  readonly value: string
  readonly target: string
  readonly met: boolean
}

const f = (n: number, digits = 2) => n.toFixed(digits)

/** Renders the Markdown report, the SVG chart and a short summary for the console. */
export const render = (results: Results) => {
  const baseline = (m: Measurement) =>
    results.http.find((b) => b.variant === "sdk" && b.concurrency === m.concurrency && b.stream === m.stream)!
  const find = (variant: string, concurrency: number, stream: boolean) =>
    results.http.find((m) => m.variant === variant && m.concurrency === concurrency && m.stream === stream)!
  const inProc = (variant: string) => results.inProcess.find((m) => m.variant === variant)!

  const rows = results.http.map((m) => {
    const b = baseline(m)
    return `| ${m.variant} | ${m.concurrency} | ${m.stream ? "stream (time to first part)" : "whole"} | ${f(m.rps, 0)} | ${f(m.p50Ms)} | ${
      f(m.p99Ms)
    } | ${f(m.cpuUsPerRequest, 0)} | ${f(m.peakRssMb, 0)} | ${f(m.p50Ms / b.p50Ms)}× | ${f(m.rps / b.rps)}× |${m.failures > 0 ? ` ${m.failures} failed` : ""}`
  })

  const leaf = inProc("test-leaf").cpuUsPerRequest
  const orchestration = inProc("test-stack-miss").cpuUsPerRequest - leaf
  const hit = inProc("test-stack-hit").cpuUsPerRequest
  const miss1 = find("stack-miss", 1, false)
  const miss64 = find("stack-miss", 64, false)
  const streamMiss1 = find("stack-miss", 1, true)
  const targets: ReadonlyArray<Target> = [
    {
      name: "full stack p50 vs raw SDK, concurrency 64",
      value: `${f(miss64.p50Ms / baseline(miss64).p50Ms)}×`,
      target: "≤ 1.10×",
      met: miss64.p50Ms / baseline(miss64).p50Ms <= 1.10
    },
    {
      name: "full stack p50 vs raw SDK, concurrency 1",
      value: `${f(miss1.p50Ms / baseline(miss1).p50Ms)}×`,
      target: "≤ 1.05×",
      met: miss1.p50Ms / baseline(miss1).p50Ms <= 1.05
    },
    {
      name: "full stack throughput vs raw SDK, concurrency 64",
      value: `${f(miss64.rps / baseline(miss64).rps)}×`,
      target: "≥ 0.90×",
      met: miss64.rps / baseline(miss64).rps >= 0.9
    },
    {
      name: "orchestration CPU per request (full stack − bare test provider, in process)",
      value: `${f(orchestration, 1)} µs`,
      target: "≤ 15 µs",
      met: orchestration <= 15
    },
    {
      name: "cache hit through the full stack, whole call (in process)",
      value: `${f(hit, 1)} µs`,
      target: "≤ 5 µs",
      met: hit <= 5
    },
    {
      name: "streaming time to first part vs raw SDK, concurrency 1",
      value: `${f(streamMiss1.p50Ms - baseline(streamMiss1).p50Ms)} ms`,
      target: "≤ 0.5 ms",
      met: streamMiss1.p50Ms - baseline(streamMiss1).p50Ms <= 0.5
    },
    {
      name: `RSS growth across ${results.rss.requests.toLocaleString("en")} in-process requests (bounded cache)`,
      value: `${f(results.rss.growthMb, 1)} MB`,
      target: "≤ 10 MB",
      met: results.rss.growthMb <= 10
    }
  ]

  const markdown = `# Benchmark results

Written by \`pnpm bench\` (${results.requests} requests per variant after a warm-up, the median of ${results.rounds} interleaved
rounds; ${results.cores} cores; Node ${results.node}).
The simulator runs in its own process on loopback with zero simulated latency; every variant runs in a fresh
process, so CPU per request and peak RSS are the client's own. Ratios are to the raw \`openai\` SDK (\`sdk\`) at the
same concurrency and mode, measured in the same run. ![ratios](ratios.svg)

- \`fetch\`: a bare \`fetch\` POST · \`sdk\`: the raw \`openai\` SDK · \`layer\`: \`OpenAI.model\` alone
- \`stack-miss\`: the demo's full stack (cache → budget → rate limit → spend router → fallback over
  breaker → retry → provider), every request a cache miss · \`stack-hit\`: the same stack, every request a cache hit

## Targets

| measure | value | target | met |
|---|---|---|---|
${targets.map((t) => `| ${t.name} | ${t.value} | ${t.target} | ${t.met ? "yes" : "**no**"} |`).join("\n")}

## Over HTTP

| variant | concurrency | mode | req/s | p50 ms | p99 ms | CPU µs/req | peak RSS MB | p50 vs sdk | req/s vs sdk |
|---|---|---|---|---|---|---|---|---|---|
${rows.join("\n")}

## In process (no HTTP): the combinators' own cost

| variant | CPU µs per call |
|---|---|
| bare test provider (\`Llm.layerTest\`) | ${f(leaf)} |
| full stack over test providers, cache miss | ${f(inProc("test-stack-miss").cpuUsPerRequest)} |
| full stack over test providers, cache hit | ${f(hit)} |
| orchestration (miss − bare) | ${f(orchestration)} |

RSS across ${results.rss.requests.toLocaleString("en")} in-process requests through the full stack (cache capacity 1,000, every request
unique): ${f(results.rss.baselineMb, 1)} MB → ${f(results.rss.finalMb, 1)} MB; live heap after a full GC
${f(results.rss.heapBaselineMb, 1)} MB → ${f(results.rss.heapFinalMb, 1)} MB.
`

  // A bar chart of the p50 and throughput ratios to the raw SDK.
  const bars = results.http.filter((m) => m.variant !== "sdk")
  const width = 760
  const rowHeight = 22
  const left = 230
  const scale = (ratio: number) => Math.min(ratio, 3) / 3 * (width - left - 60)
  const height = 60 + bars.length * rowHeight * 2
  const svgRows = bars.map((m, i) => {
    const b = baseline(m)
    const y = 40 + i * rowHeight * 2
    const latency = m.p50Ms / b.p50Ms
    const throughput = m.rps / b.rps
    return `<text x="${left - 8}" y="${y + 14}" text-anchor="end">${m.variant} c=${m.concurrency} ${m.stream ? "stream" : "whole"}</text>
<rect x="${left}" y="${y}" width="${scale(latency)}" height="${rowHeight - 6}" fill="#4e79a7"/><text x="${left + scale(latency) + 4}" y="${y + 12}">${f(latency)}× p50</text>
<rect x="${left}" y="${y + rowHeight - 4}" width="${scale(throughput)}" height="${rowHeight - 6}" fill="#f28e2b"/><text x="${left + scale(throughput) + 4}" y="${y + rowHeight + 8}">${f(throughput)}× req/s</text>`
  })
  const one = left + scale(1)
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="11">
<rect width="100%" height="100%" fill="white"/>
<text x="10" y="20" font-size="13" font-weight="bold">Switchboard vs the raw openai SDK (1.00× = same as the SDK; blue: p50 latency, orange: throughput)</text>
<line x1="${one}" y1="30" x2="${one}" y2="${height - 10}" stroke="#999" stroke-dasharray="4 3"/>
${svgRows.join("\n")}
</svg>
`
  const summary = targets.map((t) => `${t.met ? "met " : "MISS"}  ${t.name}: ${t.value} (target ${t.target})`).join("\n")
  return { markdown, svg, summary }
}
