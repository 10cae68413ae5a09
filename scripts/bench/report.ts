/**
 * Turns the measurements of `pnpm bench` into `bench/RESULTS.md` (tables,
 * ratios to the raw SDK in the same run and upstream, targets) and
 * `bench/ratios.svg` (a bar chart of the minimal-upstream ratios).
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
  /** The Router micro-benchmark's table, as printed. */
  readonly router: string
  /** `scripts/bench/layers.ts` (generate, then stream), as printed. */
  readonly layers: string
  /** `scripts/bench/leaf.ts` (whole, then stream), as printed. */
  readonly leaf: string
  /** Measured calls per variant and round at c=1, and at c=64. */
  readonly requests: number
  readonly requestsAt64: number
  /** Calls each worker made before it measured. */
  readonly warmup: number
  readonly rounds: number
  readonly soloRounds: number
  readonly simRounds: number
  readonly node: string
  readonly cores: number
  readonly load: { readonly start: string; readonly end: string }
  readonly minutes: number
}

interface Target {
  readonly name: string
  readonly value: string
  readonly target: string
  readonly met: boolean
}

/**
 * The other three providers' leaves measured against the minimal upstream, each beside its own SDK (the
 * baseline of its ratios), in table order.
 */
export const providerLeaves = [
  { provider: "anthropic", leaf: "Anthropic.model", sdkName: "@anthropic-ai/sdk", sdk: "anthropic-sdk", layer: "anthropic-layer" },
  { provider: "google", leaf: "Google.model", sdkName: "@google/genai", sdk: "google-sdk", layer: "google-layer" },
  { provider: "bedrock", leaf: "Bedrock.model", sdkName: "@aws-sdk/client-bedrock-runtime", sdk: "bedrock-sdk", layer: "bedrock-layer" }
] as const

const providerVariants = new Set<string>(providerLeaves.flatMap((p) => [p.sdk, p.layer]))
const providerOf = (variant: string) => providerLeaves.find((p) => p.sdk === variant || p.layer === variant)

const f = (n: number, digits = 2) => n.toFixed(digits)
const signed = (n: number, digits = 0) => `${n >= 0 ? "+" : "−"}${Math.abs(n).toFixed(digits)}`

/** Renders the Markdown report, the SVG chart and a short summary for the console. */
export const render = (results: Results) => {
  const upstreamOf = (m: Measurement) => m.upstream ?? "sim"
  const baseline = (m: Measurement) =>
    results.http.find((b) =>
      b.variant === "sdk" && b.concurrency === m.concurrency && b.stream === m.stream && upstreamOf(b) === upstreamOf(m)
    )!
  const find = (variant: string, concurrency: number, stream: boolean, upstream = "minimal") =>
    results.http.find((m) =>
      m.variant === variant && m.concurrency === concurrency && m.stream === stream && upstreamOf(m) === upstream
    )
  const inProc = (variant: string) => results.inProcess.find((m) => m.variant === variant)!

  const table = (upstream: string) =>
    results.http.filter((m) => upstreamOf(m) === upstream && !providerVariants.has(m.variant)).map((m) => {
      const b = baseline(m)
      return `| ${m.variant} | ${m.concurrency} | ${m.stream ? "stream (time to first part)" : "whole"} | ${f(m.rps, 0)} | ${
        f(m.p50Ms)
      } | ${f(m.p99Ms)} | ${f(m.cpuUsPerRequest, 0)} | ${signed(m.cpuUsPerRequest - b.cpuUsPerRequest)} | ${f(m.peakRssMb, 0)} | ${
        f(m.p50Ms / b.p50Ms)
      }× | ${f(m.rps / b.rps)}× |${
        upstream === "minimal"
          ? ` ${m.upstreamCpuUsPerRequest === undefined ? "–" : f(m.upstreamCpuUsPerRequest, 0)} | ${m.upstreamConnections ?? "–"} |`
          : ""
      }${
        m.failures > 0 ? ` ${m.failures} failed` : ""
      }`
    })

  const leaf = inProc("test-leaf").cpuUsPerRequest
  const cpuRounds = (variant: string) => (inProc(variant).rounds ?? [inProc(variant)]).map((m) => m.cpuUsPerRequest)
  const middle = (values: ReadonlyArray<number>) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!
  const range = (values: ReadonlyArray<number>) => values.length < 2 ? undefined : [Math.min(...values), Math.max(...values)] as const
  // Round by round (each round runs the three in a row), so a busy moment weighs on both sides of the difference.
  const orchestrationRounds = cpuRounds("test-stack-miss").map((miss, i) => miss - (cpuRounds("test-leaf")[i] ?? leaf))
  const orchestration = middle(orchestrationRounds)
  const hit = inProc("test-stack-hit").cpuUsPerRequest
  const spreadText = (values: readonly [number, number] | undefined) => values === undefined ? "–" : `${f(values[0])} – ${f(values[1])}`
  type Figure = "p50" | "rps" | "cpu" | "rss"
  const figure = (m: Measurement, b: Measurement, of: Figure) =>
    of === "p50"
      ? m.p50Ms / b.p50Ms
      : of === "rps"
      ? m.rps / b.rps
      : of === "cpu"
      ? m.cpuUsPerRequest - b.cpuUsPerRequest
      : m.peakRssMb / b.peakRssMb
  /** A figure round by round over the interleaved rounds (round i of each side together), when both have them. */
  const paired = (m: Measurement | undefined, b: Measurement | undefined, of: Figure) =>
    m?.rounds === undefined || b?.rounds === undefined || m.rounds.length !== b.rounds.length || m.rounds.length < 2
      ? undefined
      : m.rounds.map((r, i) => figure(r, b.rounds![i]!, of))
  /**
   * A target's value: the median of the figure round by round (so it always lies within its bracket), or,
   * without rounds, the figure of the two median rounds.
   */
  const valueOf = (m: Measurement | undefined, b: Measurement | undefined, of: Figure) => {
    if (m === undefined || b === undefined) return Number.NaN
    const rounds = paired(m, b, of)
    return rounds === undefined ? figure(m, b, of) : middle(rounds)
  }
  const ratio = (variant: string, concurrency: number, stream: boolean, of: Figure) => {
    const m = find(variant, concurrency, stream)
    return valueOf(m, m === undefined ? undefined : baseline(m), of)
  }
  /** The lowest and highest of a figure round by round. */
  const spread = (m: Measurement | undefined, b: Measurement | undefined, of: Figure) => {
    const rounds = paired(m, b, of)
    return rounds === undefined ? undefined : range(rounds)
  }
  const spreadOf = (variant: string, concurrency: number, stream: boolean, of: Figure) => {
    const m = find(variant, concurrency, stream)
    return spread(m, m === undefined ? undefined : baseline(m), of)
  }
  const x = (n: number) => `${f(n)}×`
  const us = (n: number) => `${signed(n)} µs`
  // The other providers' leaves: ratios to their own SDK, same concurrency, mode and run.
  const ownSdk = (m: Measurement) => {
    const p = providerOf(m.variant)
    return p === undefined ? undefined : find(p.sdk, m.concurrency, m.stream)
  }
  const leafRatio = (layer: string, of: "p50" | "cpu") => {
    const m = find(layer, 64, false)
    return valueOf(m, m === undefined ? undefined : ownSdk(m), of)
  }
  const leafSpread = (layer: string, of: "p50" | "cpu") => {
    const m = find(layer, 64, false)
    return spread(m, m === undefined ? undefined : ownSdk(m), of)
  }
  const providerRows = results.http.filter((m) => upstreamOf(m) === "minimal" && providerVariants.has(m.variant)).flatMap(
    (m) => {
      const b = ownSdk(m)
      if (b === undefined) return []
      return [
        `| ${providerOf(m.variant)!.provider} | ${m.variant} | ${m.concurrency} | ${m.stream ? "stream (time to first part)" : "whole"} | ${
          f(m.rps, 0)
        } | ${f(m.p50Ms)} | ${f(m.p99Ms)} | ${f(m.cpuUsPerRequest, 0)} | ${signed(m.cpuUsPerRequest - b.cpuUsPerRequest)} | ${
          f(m.peakRssMb, 0)
        } | ${m.upstreamCpuUsPerRequest === undefined ? "–" : f(m.upstreamCpuUsPerRequest, 0)} | ${m.upstreamConnections ?? "–"} | ${
          f(m.p50Ms / b.p50Ms)
        }× | ${
          f(m.rps / b.rps)
        }× |${m.failures > 0 ? ` ${m.failures} failed` : ""}`
      ]
    }
  )
  const providerTargets = providerLeaves.flatMap((p) => [
    [`${p.provider} leaf (\`${p.leaf}\`) p50 vs its SDK, c=64`, leafRatio(p.layer, "p50"), "≤ 1.05×", (n: number) => n <= 1.05, x, leafSpread(p.layer, "p50")],
    [`${p.provider} leaf added CPU per request vs its SDK, c=64`, leafRatio(p.layer, "cpu"), "≤ +30 µs", (n: number) => n <= 30, us, leafSpread(p.layer, "cpu")]
  ] as const)
  const targets: ReadonlyArray<Target> = [
    ["full stack p50 vs raw SDK, c=64", ratio("stack-miss", 64, false, "p50"), "≤ 1.10×", (n: number) => n <= 1.10, x, spreadOf("stack-miss", 64, false, "p50")],
    ["full stack throughput vs raw SDK, c=64", ratio("stack-miss", 64, false, "rps"), "≥ 0.90×", (n: number) => n >= 0.90, x, spreadOf("stack-miss", 64, false, "rps")],
    ["full stack added CPU per request, c=64", ratio("stack-miss", 64, false, "cpu"), "≤ +60 µs", (n: number) => n <= 60, us, spreadOf("stack-miss", 64, false, "cpu")],
    ["leaf (`OpenAI.model`) p50 vs raw SDK, c=64", ratio("layer", 64, false, "p50"), "≤ 1.05×", (n: number) => n <= 1.05, x, spreadOf("layer", 64, false, "p50")],
    ["leaf added CPU per request, c=64", ratio("layer", 64, false, "cpu"), "≤ +30 µs", (n: number) => n <= 30, us, spreadOf("layer", 64, false, "cpu")],
    ["full stack p50 vs raw SDK, c=1", ratio("stack-miss", 1, false, "p50"), "≤ 1.10×", (n: number) => n <= 1.10, x, spreadOf("stack-miss", 1, false, "p50")],
    ["full stack streaming time to first part vs raw SDK, c=64", ratio("stack-miss", 64, true, "p50"), "≤ 1.10×", (n: number) =>
      n <= 1.10, x, spreadOf("stack-miss", 64, true, "p50")],
    ["full stack streaming time to first part vs raw SDK, c=1", ratio("stack-miss", 1, true, "p50"), "≤ 1.10×", (n: number) =>
      n <= 1.10, x, spreadOf("stack-miss", 1, true, "p50")],
    ["full stack peak RSS vs raw SDK, c=64", ratio("stack-miss", 64, false, "rss"), "≤ 1.20×", (n: number) => n <= 1.2, x, spreadOf("stack-miss", 64, false, "rss")],
    [
      "orchestration CPU per call, full stack − bare test provider (in process)",
      orchestration,
      "≤ 10 µs",
      (n: number) => n <= 10,
      (n: number) => `${f(n, 1)} µs`,
      range(orchestrationRounds)
    ],
    [
      "cache hit through the full stack (in process)",
      hit,
      "≤ 2 µs",
      (n: number) => n <= 2,
      (n: number) => `${f(n, 1)} µs`,
      range(cpuRounds("test-stack-hit"))
    ],
    [
      `live heap after GC across ${results.rss.requests.toLocaleString("en")} in-process calls`,
      results.rss.heapFinalMb - results.rss.heapBaselineMb,
      "flat (≤ +5 MB)",
      (n: number) => n <= 5,
      (n: number) => `${f(results.rss.heapBaselineMb, 1)} → ${f(results.rss.heapFinalMb, 1)} MB (${signed(n, 1)} MB)`
    ],
    ...providerTargets
  ].map(([name, value, target, ok, show, range]) => ({
    name: name as string,
    value: Number.isNaN(value as number)
      ? "not measured"
      : `${(show as (n: number) => string)(value as number)}${
        range === undefined
          ? ""
          : ` [${(show as (n: number) => string)((range as readonly [number, number])[0])} – ${
            (show as (n: number) => string)((range as readonly [number, number])[1])
          }]`
      }`,
    target: target as string,
    met: !Number.isNaN(value as number) && (ok as (n: number) => boolean)(value as number)
  }))

  const header =
    "| variant | concurrency | mode | req/s | p50 ms | p99 ms | CPU µs/req | CPU vs sdk | peak RSS MB | p50 vs sdk | req/s vs sdk |"
  const markdown = `# Benchmark results

Written by \`pnpm bench\` in ${f(results.minutes, 1)} minutes. For each table (upstream, concurrency, mode) every
variant's worker process starts once and makes ${results.warmup.toLocaleString("en")} calls of warm-up; then each
interleaved round asks every worker in turn for one block of ${results.requests.toLocaleString("en")} requests at c=1 and
${results.requestsAt64.toLocaleString("en")} at c=64, after a tenth as many unmeasured ones: ${results.rounds} rounds against
the minimal upstream (${results.soloRounds} at c=1 for the OpenAI variants: a short sequential run moves with the machine) and
${results.simRounds} against the simulator, the variants' order reversed every other round, so the blocks a ratio pairs run
seconds apart; ${results.cores} cores shared with other work — **load average ${results.load.start} at the start,
${results.load.end} at the end** (1, 5, 15 min); Node ${results.node}. Each variant has a process of its own, so CPU per
request and peak RSS are the client's own. Ratios are to the raw \`openai\` SDK (\`sdk\`) at the same concurrency, mode
and upstream, in the same run.
![ratios](ratios.svg)

- \`fetch\`: a bare \`fetch\` POST · \`sdk\`: the raw \`openai\` SDK · \`sdk-signal\`: the raw SDK given an
  \`AbortSignal\` per call, as a caller that cancels must · \`sdk-undicifetch\`: the raw SDK over
  \`UndiciFetch\`, the transport the leaves use by default · \`layer\`: \`OpenAI.model\` alone · \`router\`: a priority \`Router\` over two OpenAI leaves
- \`stack-miss\`: the demo's full stack (cache → budget with \`count: "bound"\` → rate limit → spend router → fallback over
  breaker → retry → provider), every request a cache miss · \`stack-hit\`: the same stack, every request a cache hit

## Targets (minimal upstream unless said)

Each value is the median of its figure taken round by round (round i of the variant against round i of its SDK, which ran
beside it); in brackets, the lowest and highest of those rounds. The tables below show each variant's median round.

| measure | value | target | met |
|---|---|---|---|
${targets.map((t) => `| ${t.name} | ${t.value} | ${t.target} | ${t.met ? "yes" : "**no**"} |`).join("\n")}

## Over HTTP: the minimal upstream (\`scripts/bench/upstream.ts\`)

A tiny \`node:http\` server answering one fixed chat.completion (or SSE stream), keep-alive, in its own process: what the
client itself costs. The last columns are what the upstream spent per request serving that client, and how many
connections it accepted during the median round's block (its requests and their warm-up). A client that keeps its
connections opened them in its first warm-up (about as many as it has calls in flight, or twice that: undici opens a
second one when the next call is sent in the same tick its previous response ended) and opens none or a few here; a
connection per call reads in the hundreds or thousands, as Bedrock's SDK does over HTTP/2.

${header} upstream CPU µs/req | connections |
|---|---|---|---|---|---|---|---|---|---|---|---|---|
${table("minimal").join("\n")}

## Other providers' leaves (minimal upstream)

Each provider's leaf alone (\`Anthropic.model\`, \`Google.model\`, \`Bedrock.model\` over their client layers) beside the
official SDK it wraps, called directly with retries off (\`${providerLeaves.map((p) => p.sdkName).join("\`, \`")}\`), against
the same minimal upstream answering that protocol with a recorded body (Anthropic Messages JSON and SSE, Gemini
\`generateContent\` and \`streamGenerateContent?alt=sse\`, Bedrock \`converse\` and \`converse-stream\` in AWS event-stream
framing over h2c), interleaved in the same rounds. Ratios are to **its own SDK** at the same concurrency and mode.

| provider | variant | concurrency | mode | req/s | p50 ms | p99 ms | CPU µs/req | CPU vs its SDK | peak RSS MB | upstream CPU µs/req | connections | p50 vs its SDK | req/s vs its SDK |
|---|---|---|---|---|---|---|---|---|---|---|---|---|---|
${providerRows.join("\n")}

## Over HTTP: the simulator

${header}
|---|---|---|---|---|---|---|---|---|---|---|
${table("sim").join("\n")}

## In process (no HTTP): the combinators' own cost

| variant | CPU µs per call (median round) | lowest – highest round |
|---|---|---|
| bare test provider (\`Llm.layerTest\`) | ${f(leaf)} | ${spreadText(range(cpuRounds("test-leaf")))} |
| full stack over test providers, cache miss | ${f(inProc("test-stack-miss").cpuUsPerRequest)} | ${spreadText(range(cpuRounds("test-stack-miss")))} |
| full stack over test providers, cache hit | ${f(hit)} | ${spreadText(range(cpuRounds("test-stack-hit")))} |
| orchestration (miss − bare, round by round) | ${f(orchestration)} | ${spreadText(range(orchestrationRounds))} |

Memory across ${results.rss.requests.toLocaleString("en")} in-process calls through the full stack (cache capacity 1,000, every
request unique): RSS ${f(results.rss.baselineMb, 1)} MB → ${f(results.rss.finalMb, 1)} MB; live heap after a full GC
${f(results.rss.heapBaselineMb, 1)} MB → ${f(results.rss.heapFinalMb, 1)} MB.

## What the profiles showed (\`--cpu-prof\`, leaf and full stack, c=1 and c=64, minimal upstream)

- Node's \`fetch\` was the floor, not the SDK (session 6). In the leaf's profile at c=64 Node's fetch (undici
  behind WHATWG \`Request\`, \`Headers\` and body streams; the request body is even \`tee\`d for a possible
  redirect), the SDK's request building and GC took the bulk of the CPU; Effect's run loop and Switchboard's own
  code were under a tenth. The SDKs take a \`fetch\` option, so the leaves now default to \`UndiciFetch\`
  (\`@switchboard/core/provider\`): a \`fetch\` over undici's \`request\`, the same client Node's fetch is built
  on, that reads a JSON body whole, streams any other, follows redirects, decodes a compressed body, and fails
  as \`fetch\` fails (\`TypeError("fetch failed")\` with undici's error as cause; an abort with the signal's
  reason) — held to Node's fetch by a test that sends the same replies through both. The SDK still builds the
  request, parses the answer and raises its own errors. Interleaved, the raw \`openai\` SDK over it against the
  SDK over Node's fetch (c=64, CPU µs a call): whole 399–461 against 556–623, a stream 536–603 against
  677–814; c=1 whole 509–598 against 793–828; about 1.3× the calls a second. undici's own \`fetch\` (the same
  WHATWG layer over a pool of its own) was no cheaper than Node's (562 against 556). The \`sdk-undicifetch\` line
  is the raw SDK over it: the leaf's own cost is the gap between that line and \`layer\`. Much of Node's
  fetch's cost follows the \`signal\` every Stainless SDK passes (its fetch keeps each request's signal in a
  finalization registry); the Gemini SDK passes none unless asked, and over \`UndiciFetch\` its calls cost
  233–305 µs against 435–506 over Node's fetch. The OpenAI, Anthropic and Gemini leaves use it by default; the
  \`*-sdk\` lines stay the raw SDKs over Node's fetch.
- A stream cancelled at its \`[DONE]\` (the SDKs stop reading there and cancel the body) destroyed its undici
  body, which builds an abort error with its stack (~25 µs a stream in the leaf's profile) and, over a network
  where the body's terminator comes a read later, drops the connection. \`UndiciFetch\` now drains the end
  and keeps the connection (a test: two such streams, one connection); an abort still goes through the signal
  at once. The full stack's time to first part at c=1 read 0.92–0.93× in interleaved runs on a quiet machine
  after it (the previous full run: 1.31×); this session's two full runs, under other load, read 1.10× and 1.16×.
- Bedrock's floor was its transport: the SDK's default handler for Bedrock Runtime is HTTP/2 with
  \`disableConcurrentStreams\`, a new session (a new connection; over the network a TLS handshake) for every
  request. The raw SDK at c=64 over it: 1,220–1,330 µs a call; over kept-alive HTTP/1.1 (\`NodeHttpHandler\`):
  820–875; over one multiplexed HTTP/2 session: 770–807. Converse and ConverseStream need no HTTP/2, so the
  leaf now uses kept-alive HTTP/1.1 (\`httpVersion: "2"\` keeps the SDK's handler); the leaf's own cost over
  the same client in process is +40–80 µs a call (\`leaves.ts\`: the SDK's own middleware, signing and
  serde are ~400 µs a call).
- Removed from the leaf: the \`Llm.attempt\` span captured a stack trace (\`new Error()\`) per call — ~2% of the
  leaf's CPU, the largest single item of Switchboard's own; the OpenAI call ran as a generator with the endpoint
  URL (a regex replace) and the secrets array rebuilt per call; the common chat.completion body went through
  the Schema parser (~2% of the leaf's CPU, ~10 µs a body) — now a hand-written guard strictly narrower than the
  Schema accepts it, and everything else (tool calls, content parts, every error message) still goes through
  the Schema.
- The caller's abort signal per call is gone (session 5). The SDK tied a caller's signal to its own controller
  with \`AbortSignal.any\` (or weak references and a finalization registry): in process the raw SDK given a
  signal per call cost 188 µs a stream against 160 without, ~20 µs a whole call. A call now carries a plain
  handle in its per-request \`fetchOptions\`, and the client's \`fetch\` (wrapped once by
  \`Cancel.cancellable\`, \`@switchboard/core/provider\`; the OpenAI and Anthropic leaves) gives the real
  \`fetch\` one controller that follows the SDK's own signal with a plain listener and the handle's abort. In
  process the OpenAI leaf's added CPU went 45 → 16 µs with 64 in flight, 31 → 21 sequential, 138 → 113 a
  stream; over HTTP at c=64, interleaved runs after it read +55–90 µs (session 4's full run: +126). Interrupting a call still aborts its
  request (tests over real HTTP), now also while a stream waits for its headers (its open was uninterruptible
  before). Also kept: the rate-limit headers read in one walk (\`response.rateLimit\` is part of every answer)
  and the SDK's own timeout timer (armed in every call, raw or not); the leaf passes a per-call \`timeout\`
  only when a deadline shortens the client's. The connection is reused by both (the upstream's CPU per
  request is in the table).
- The demo stack's budget reserves with \`count: "bound"\` (session 5): the input at its UTF-8 length, counted
  only when that bound does not fit, so no call is refused that the count would admit and the hot path runs
  no BPE. The count was 15–20 µs of the ~80 µs the stack added over its leaf at c=64 (profile), and in process
  the stack went 13.4–14.2 → 8.5–10.5 µs a call. \`"exact"\` stays the default.
- Where a leaf's stream goes, in process (canned \`fetch\`, sequential, CPU µs, medians of 5): the raw SDK
  165; the same call through \`Cancel.call\` and a plain \`for await\` in Effect 174; core's stream reader and
  Effect's \`Stream\` alone, without \`Provider.make\`, 241; the whole leaf 255. The reader and \`Stream\`
  (its pulls, the pump's awaits, their garbage) are the remaining cost, not the layers above them.
- Memory held per call in flight (5,000 calls held in the test leaf, heap after GC): the bare leaf 4.3 KB, the
  full stack 9.5 KB — retry +1.2, budget +1.6, fallback +1.6, router +1.6, breaker +0.4, rate limit +0.3,
  cache 0. At 64 in flight that is ~0.3 MB: the stack's extra GC under load comes from what it allocates per
  call, not from what it holds.
- The full stack's in-process cost is dominated by the Budget's token count of each unique prompt (the
  tokenizer, ~15% of the in-process stack profile; a chat resending its history hits the per-text memory) and
  by Effect's run loop across the seven combinators. The per-text memory was capped by texts as well as
  characters: a remembered text outlives the young GC generation, which cost more per unique short prompt
  (~1.5–3.7 µs) than counting it (~3 µs); an estimate for another model family reuses the request's
  \`o200k_base\` count instead of a second pass.
- Streams paid per call for operators that were cheap to write and dear to run (effect 4.1, four-element
  stream): \`Stream.suspend\` records each stream in a \`WeakMap\` (~5 µs), \`Stream.concat\` of a suspended
  tail to fail at the end ~19 µs, \`Stream.tap\` an effect per part, \`Stream.retry\` a schedule driver on every
  call. The combinators now use \`Stream.unwrap\` of a sync effect, the channel's end mapped to fail
  (\`Channel.mapDoneEffect\`), a batch-wise \`mapArray\`, and Retry builds its series only after a failure;
  the OpenAI chunk got the body's fast path (the Schema cost ~8 µs a chunk), held to the Schema by a property
  test. In process, the full stack's added CPU per stream fell from ~366 µs to ~234–279 µs (wave 1's code in
  the same run: 281–292 µs); retry 66 → 39, breaker 62 → 37, rate limit 58 → 9, fallback 70 → 31.
- Wave 1's code, checked out beside this one and measured in the same session with \`layers.ts\` (whole call
  through the full stack over the scripted leaf, CPU µs, two interleaved runs each): generate 35.3–39.0 here
  against 35.9–38.6 in wave 1; a stream 362–396 here against 424–431 in wave 1. The leaf itself got cheaper,
  so "orchestration (miss − bare)" reads 3–5 µs higher than wave 1's while a whole call costs the same.
- The token count costs far more under load than in a tight loop: at c=64 over HTTP the BPE rank lookups of a
  40-character prompt took ~10–20 µs a request (the \`o200k_base\` table's lookups miss the CPU caches once
  other work runs between counts), against ~2 µs in process. Texts under 256 characters are now counted
  rather than remembered (remembering a unique short text cost more in GC than counting it), a model's encoding
  is remembered, and the counts of the latest 16 request objects are kept by identity instead of in a
  \`WeakMap\` (which the GC traces as ephemerons). The Budget alone over the test leaf went 14 → 6–9 µs.
- The Budget and the RateLimit take their reservation or permit in the call's first step when the memory store
  and the loaded tokenizer can answer at once (a ready count is an \`Exit\` already), so a plain \`onExit\`
  settles it, with nothing between taking and the finalizer that an interruption could hit — instead of
  \`acquireUseRelease\` (~1.1 µs); \`Llm.observeAttempts\` is one context update instead of a read and a
  provide; the Budget's \`state\` reads its own memory store in one step; Retry's first try has no suspend
  or tap of its own.
- \`Stream.onExit\` (and \`Stream.ensuring\`) fork and close a scope per run: ~9 µs on a four-element stream,
  against ~3 µs for a finalizer that watches the pull's end and sits on the run's scope for an early drop or
  an interruption (\`internal/streams.ts\`). It replaced them in the budget, rate limit, breaker, leaf,
  telemetry, cache and test leaf streams.
- A cache hit spent ~0.8 µs of its ~1 µs key in SHA-256 (the native call, not the bytes): requests whose
  canonical form is at most 512 characters are keyed by that form in memory (exact, so no collision; longer
  ones by the digest, so a long prompt is not kept twice), and \`CacheHit\` events still carry the digest,
  never the text; a settled entry is read without awaiting it (\`Cache.getSuccess\`). In process a hit went
  3.4 → 2.1–2.4 µs.
- What was left of a cache hit (2.7 µs in process, session 6) was Effect's \`Cache\` (~1.1–1.4 µs: an effect
  to look up, an \`Option\`, and an LRU that deletes and re-sets the key's \`Map\` entry on every hit, which
  leaves a hole the table is later rehashed to drop). Settled answers now sit in a least-recently-used map of
  their own (a \`Map\` for lookup beside a linked list for recency: a hit is one \`Map\` read and a few
  pointer writes, checked against a recency-ordered \`Map\` by a property test) read in the caller's step;
  Effect's \`Cache\` still shares the calls in flight (single flight, cancelled when the last caller leaves).
  The cache over a test leaf went ~2.2 → ~1.2 µs a hit in a side-by-side loop; through the bench's demo stack
  the in-process hit read 3.0 µs last session and 2.3–2.4 µs in this session's full runs (the machine's speed
  moved the bare test leaf itself from 4.4 to 6.2 µs between runs). What remains is hashing the fresh key
  string (~0.4 µs: every request is a new object, so its key is a new string), building that key (~0.25 µs),
  and \`Llm.generate\`'s dispatch.
- A \`Map\` lookup with a key built per call hashes that new string every time, and in the running stack that
  cost ~2.5–3.5 µs a lookup (cold caches between calls), not the ~0.1 µs of a tight loop: the Budget looked
  its record up under \`"budget:" + scope\` on every reservation and settlement (126 profile ticks per 40,000
  streams → 10). The Budget and the CircuitBreaker (with a named, shared store) now keep one key object per
  scope or circuit.
- Streams: the Budget, the RateLimit and the CircuitBreaker each ran three to five \`Stream\` layers around
  their resource (\`lazy\`, \`unwrap\`, \`watch\`, and for the Budget's attempt observers \`unwrap\` +
  \`provideService\`); each is now one guarded channel layer (\`internal/streams.ts\`) whose finalizer is on the
  run's scope before the reservation, permit or admission is taken — which also closed a window in the breaker
  where an interruption between its admission and its watch leaked a half-open probe slot. In process the
  Budget's added CPU per stream read 40 → 33 µs (noisy: most of it is the token count and Effect's run loop,
  not layers). A stream still costs the leaf far more than a whole call (+150–300 µs over the same transport at
  c=64, ~+20 µs a call), spread thinly over core's reader, the SDK's SSE iterator and Effect's \`Stream\`.
- The time to first part at c=1 was the one target the stack missed over HTTP (session 7's full runs: 1.47×,
  1.59×, 1.30×; 1.00–1.18× in quiet interleaved runs). In process with a canned \`fetch\` each combinator's
  stream setup cost 8–15 µs before the request left, and the stack ran 25 Effect channel transforms per stream
  (counted), the leaf 8: every \`Stream.unwrap\`, \`provideService\`, \`filterMap\`, \`catch\`,
  \`mapArrayEffect\` and end check is a layer with its own setup on the way to the first part and its own step
  on every pull. Session 8 fused them (\`internal/streams.ts\`): a Retry, Fallback, Hedge or Router try of a child
  is one layer (\`recovering\`: unwrap, provideService, filterMap, mapArrayEffect and catch, with
  \`Stream.catch\`'s semantics), a
  leaf's attempt is one (\`guarded\` with a batch effect and an end check), \`StreamAccumulator.stream\` is one
  and the OpenAI and Anthropic leaves prepare their request inside it, and a stream picked per run hands on
  its pull (\`withFiber\`). Now 10 transforms per stream through the stack, 4 through a leaf. Session 7's code
  and this one alternated in process (two runs each of 14 counted rounds of 300 streams, medians, µs over the
  SDK called directly with the leaf's own client options, \`withResponse\` and cancel handle): the stack's
  request leaves +107–115 → +64–73 after the SDK's, its first part +145–162 → +107–123; the leaf's first part
  +71–90 → +65–79.
  What is left before the request leaves is each combinator's own work (the Budget's reservation, the limiter's
  permit, the breaker's admission) and Effect's run loop; after it, the SDK's SSE parsing and core's reader, as
  for the raw SDK.
- In process, the stack ran 56 Effect steps and allocated ~17 KB per whole call (counted by patching the run
  loop; sampled with the heap profiler, collected objects included), its leaf 16 steps and ~5.7 KB. Every
  \`provideService\` is a context change on the way in and out (two rebuilds of the fiber's cache, an overlay
  every later lookup walks): Retry, Fallback and Router each provided a report cell around every child call
  so a failure could tell them its attempts. Session 9 made the attempts ride on the failure itself (an
  annotation of its \`Fail\` reason, \`internal/attempts.ts\`), so a call that succeeds pays nothing for them.
  The Budget prices its fixed targets once per \`Pricing\` (its worst case is linear), the limiter and the
  breaker settle on the fiber their finalizer runs on, metrics checks read the fiber's cached tracer, and the
  cache's in-memory key is one \`JSON.stringify\` (a key built of many concatenations is copied flat before a
  \`Map\` can hash it: key and lookup ~380 → ~210 ns). Now 48 steps and ~13 KB per call; on a quiet machine
  (paired runs) orchestration read 7.4 → 6.0 µs and a hit 1.8 → 1.5 µs. Under load from other tenants the
  same code reads ~1.6× that (the bare leaf alone moved 4.2 → 6.8 µs between runs today), so these two
  in-process figures say as much about the machine as about the code. What remains of a miss: the Budget's
  per-call attempt observer (a context change, and the leaf then settles each attempt through \`onExit\`), which
  keeps money a provider billed from being released when the response never comes back up; Effect's run loop.
- The stack's time to first part at c=1 (the one target that moves between runs: 1.05× in session 8's last run,
  1.15× [0.78–1.74] in session 9's first): in process with a canned \`fetch\` and marks at each layer's setup, the
  SDK's first part came ~160 µs after the call, the bare leaf's ~+65 µs later (~+32 before the request leaves:
  the run, the leaf's setup and request; ~+33 after: core's reader and Effect's pull), and the stack's ~+40 µs
  after the leaf's. The demo's spend router picked its chain with \`Stream.unwrap\`, which provides a \`Scope\`
  around the pick (two context changes) and adds a step to every pull: ~6 µs of the stack's setup. It now uses
  \`Llm.choose\` (one channel layer whose pull is the chosen stream's; \`Budget.switchAt\` uses it too). Over
  loopback the SDK's first part at c=1 takes ~730 µs, so +100 µs in process is ~1.14×: the stack sits at this
  target's edge, and which side a run lands on is the machine's noise. Each combinator's stream setup is now
  mostly Effect's channel machinery (5–10 µs a layer: a scope, a transform, a finalizer).
- Session 10 timed the same path over loopback (the minimal upstream, c=1, 500 sequential streams a round,
  marks where \`fetch\` is called and where it resolves; medians of 5 rounds). Live, every cost reads 2–3× its
  in-process figure (cold caches after each idle wait), so the budget was smaller than it looked. The raw SDK
  (over \`UndiciFetch\`) called \`fetch\` ~65 µs after the call, had its headers ~280 µs later, and its first
  part **~100 µs after the headers**; a plain \`fetch\` with a ten-line SSE split needed ~15 µs after the headers.
  That ~85 µs is the \`openai\` SDK's stream reader: three nested async generators, a \`Promise.race\` against
  its abort signal on every network read, a line decoder, then an event at a time. The OpenAI leaf now lets the
  SDK build the request and throw for the status (\`.asResponse()\`) and reads the events itself
  (\`ServerSentEvents\` in \`@switchboard/core/provider\`, parsed by \`eventsource-parser\`), keeping the SDK's
  in-band \`APIError\` and \`SyntaxError\` and its \`[DONE]\` and last-event rules. The leaf's first pull to its
  first part went ~60 → ~20 µs; its first part 484–533 → ~400 µs (the SDK over the same transport: ~415–445), the
  stack's 582–586 → ~448. Interleaved bench workers (7 rounds, 3,000 streams, ratios to the raw SDK over Node's
  fetch): the leaf 1.08× → 0.81×, the stack 1.14× → 0.99×. What is left of the stack's margin over its leaf is
  the combinators' setup before the request leaves (~25 µs live) and the leaf's own (~30 µs: the run, the
  request's preparation, the cancel handle).
- Nothing between a leaf's \`fetch\` and the next turn of the event loop is free at c=1: undici (8.12 here; 7.29 inside Node 24.21's
  \`fetch\` too) writes a request on a reused kept-alive socket only after one \`setImmediate\` (its
  idle-socket check, GHSA-35p6-xmwp-9g52), so every synchronous step and microtask after the \`fetch\` call delays
  the request itself. Over loopback, 100 µs of busy work right after \`fetch\` delayed the answer by ~150 µs; the
  same work after one \`setImmediate\` cost nothing. The leaf's fiber suspends at once after the call (the
  \`fetch\` call to that turn: ~30 µs for the SDK, the leaf and the stack alike, most of it undici's own dispatch).
- The Gemini leaf's stream still had the shape the other leaves lost in session 8: a \`Stream.unwrap\` of a
  generator, a \`Stream.ensuring\` and a \`Stream.map\` around its reader (three layers, each a setup per stream and
  a step per pull; \`ensuring\` forks and closes a scope). It is now one \`StreamAccumulator.stream\` layer, its
  rate-limit state set on the accumulator from the first chunk. In process (\`leaves.ts --stream\`, two
  alternations, the machine loaded): the leaf 295–308 → 217–242 µs a stream, its SDK 127–132 in the same runs;
  over loopback at c=1 its time to first part went 1.27× → 1.17× of its SDK (5 rounds each, not the same load).
  The rest is \`@google/genai\`'s own reader, which the raw SDK pays as well: it runs \`JSON.parse\` over every
  network read only to look for an error (a read that starts \`data:\` throws a \`SyntaxError\`, stack and all,
  which it catches), and turns every event into a \`new Response(text).json()\` — 10 % of a streaming profile is
  that error check alone. Reading the events with \`ServerSentEvents\`, as the OpenAI leaf now does, would need the
  SDK's conversion of each chunk for both the Gemini API and Vertex: left for later.
- How the figures are taken changed in session 11. Each worker used to measure 2,000 calls after 500 of warm-up: at
  c=64 a run lasted ~1 s, its CPU per call moved by ±150 µs from round to round, and the JIT was still compiling
  (on background threads that count in the process's CPU time): with 3,000 warm-up calls instead of 500, both the
  SDK and the stack spent ~100 µs a call less. Now every worker warms up with 2,000 calls, measures four times as
  many at c=64 (8,000), five rounds with the order reversed every other round. The rounds still spread as
  widely (added CPU −43…+158 µs in one run, −183…+145 in the next, under more load): the machine's other work
  moves them, not the runs' length. The SDK's CPU at c=64 fell from
  ~600 to ~410 µs a call, and the stack's overhead shows at its true size against it: at c=64 p50 and throughput
  measure the same thing (a closed loop: p50 ≈ 64 / throughput), the main thread's time per call, and the stack
  spends ~85 µs more of it than its leaf (1 / throughput in the median rounds: ~373 against ~289 µs, the SDK
  ~325, in session 11's first run; ~447, ~362 and ~377 in its second, under more load).
- Where those ~85 µs go: a CPU profile of only the measured window (the inspector started after the warm-up;
  8,000 calls at c=64 each): main thread 5,863 ms for the stack, 5,486 for its leaf, 5,543 for the SDK. The
  garbage collector took the same in both (577 against 573 ms): an earlier whole-process profile that blamed it
  had counted the start-up (module compilation, token tables). The difference is Effect's run loop (+173 ms) and
  core (+276 ms): the 20 or so Effect steps the seven combinators add to a call, each costing a few µs with 64 calls
  interleaved against ~0.1 µs in a sequential loop. Leaving one piece out at a time (3 rounds, each figure ±20 µs) shows no piece
  standing out: budget ~20 µs, fallback ~30, breaker ~15, rate limit ~10, retry and the spend router ~5 each. In
  process with the real SDK over a canned \`fetch\` and 64 calls in flight (\`leaf.ts --concurrency 64 --latency 1\`)
  the leaf adds 26–34 µs to the SDK and the stack 52. The way down is fewer steps per call on the combinators'
  success paths, not less allocation (the Budget's attempt observer, written out in its finalizer, saves 650 B a
  call; with the collector at par, that is not where the time is).
- Session 12 took those steps out. A finalizer that settles synchronously (the Budget's reservation, the limiter's
  permit, the breaker's record, a leaf telling its attempt observers) now returns no effect when nothing is left to
  publish or store (\`Effect.onExitPrimitive\`), where it returned \`Effect.void\` and the run loop ran a \`flatMap\`,
  the void and the exit again; Retry and Fallback hand only a failure to their handler (\`Effect.catchCause\`), so
  a success passes through their frame without a step; Fallback learns who answered in an \`Effect.map\` (one
  function per child). Counted by patching the scheduler's per-step check (scratch \`tmp/steps.ts\`): a whole
  call through the stack 47 → 37 steps (its leaf 18), ~12.4 → ~11.4 KB allocated. Measured with every variant in
  one process, alternating batches of 1,000 calls at c=64 against one upstream (scratch \`tmp/mix.ts\`, main-thread
  CPU, 60 batches): the stack over its leaf ~53 µs a call before, ~44 after, the two builds side by side; each
  batch's difference spreads ±40 µs, so that is a direction, not a figure. In that harness each combinator alone
  over the leaf costs within its noise (a leaf against a copy of itself reads 0–14 µs): the stack's ~45 µs are
  seven layers' worth of a few µs each, with none standing out. Fusing their bookkeeping into one step on each
  side of the leaf (the idea of session 11's note) would join only the Budget and the rate limiter in this stack
  (the others alternate with Retry, Fallback and the spend router, which act on failure or choose, not before
  and after), ~3 steps of 37: not done. Session 12's two full runs on this code met the stack's c=64 targets;
  session 11's two on the earlier code, under similar load averages, missed them. The rounds still spread widely
  (p50 0.71–1.29× within one run), so the median of one run says less than it seems.
- The stack's time to first part at c=1 was the figure left on its edge (1.09×, 1.20×, 1.07×, 1.18×, 1.09× in
  the five runs before session 13). Counted the same way, a stream ran 148 steps before its first part through the
  stack and 82 through its leaf: budget +18, rate limit +14, breaker +14, retry +8, fallback +8, spend router +5.
  Traced primitive by primitive (a \`context\` hook on the native tracer), a guarded layer (\`internal/streams.ts\`:
  the Budget, the rate limiter, the breaker and a leaf's attempt) spent seven of its steps before its inner stream
  started: registering its close on the run's scope (\`Scope.addFinalizerExit\`, an effect of its own) and then
  opening in another. Session 13 does both in the step that sets the layer up: the close goes on the scope by
  writing its state (\`Scope.State\`, public and mutable in 4.1) as Effect's own \`Scope.forkUnsafe\` does, checked
  once on load against \`Scope.close\` with the effect as the fallback, and \`open\` returns the stream itself when
  it took its reservation, permit or admission at once. 148 → 120 steps through the stack, 82 → 72 through the
  leaf; what is left is each layer's channel (its setup, a map, the transform's own error catch) and a step or two
  per pull. In process with live sockets the stack's first part comes ~40–55 µs after its leaf's, at 0.86–0.89× of
  the SDK's (every variant in one process, shuffled batches: scratch \`tmp/mixttft.ts\`); separate processes read it
  from 0.9× to 1.5× round by round.
- How the figures are taken changed again in session 13. Every round used to start a fresh process per variant,
  warm it up and measure it, so the two processes a ratio pairs ran up to a minute apart (seven variants at c=1, two
  to four seconds each), and the machine's other work moved between them: the stack's time to first part against the
  SDK's read 0.95× to 1.53× from one round to the next (scratch \`tmp/ab64.ts\`, eight rounds). Now each
  variant's worker starts once per table and waits between its blocks (\`worker.ts serve\`, asked over an IPC
  channel); a round is one block of each, after a tenth as many unmeasured calls to warm its caches again, and the
  blocks a ratio pairs run seconds apart. Starting the workers
  once also freed the time for fifteen rounds at c=1 instead of nine, and the run takes ~15 minutes instead of ~26.
  Every client's CPU per call fell with it (c=64, whole, session 12's last run against session 13's first: the SDK
  489 → 270 µs, the SDK over \`UndiciFetch\` 331 → 142, the leaf 424 → 188, the stack 434 → 254): a block now runs
  in a process that has made tens of thousands of calls, past its JIT's last tier-up, where a fresh process after
  2,000 calls was still compiling on its background threads. The ratios to the SDK moved less. The steady state
  shows plainly what the library itself adds over the same transport: the leaf +46 µs a call against the SDK over
  \`UndiciFetch\` in that run and the stack +66 over its leaf; +48 and +25 in the second. The rounds spread as
  widely as before in the first run (the stack's p50 at c=64 0.77–1.53×) and much less in the second (1.01–1.12×,
  a quieter machine at its start): the noise is the machine's within a block's second or two, not only the distance
  between the blocks.
- The Anthropic, Gemini and Bedrock leaves decoded the common body through the Schema (1.7–2.4 µs a body,
  6–7 µs a stream): each has a hand-written check for the common text answer and stream events, strictly
  narrower than the Schema and held to it by a property test (5,000 generated bodies per shape, same outcome,
  same error text, same fields read); tool use, exceptions and every error message still go through the
  Schema. Their remaining cost is core's stream reader and Effect's \`Stream\`, as for OpenAI.

## The Router (\`scripts/bench/router.ts\`, in process)

\`\`\`
${results.router}
\`\`\`

## Each combinator alone (\`scripts/bench/layers.ts\`, in process)

Every combinator over the scripted test leaf, unique prompts; a stream is three text parts and its finish.

\`\`\`
${results.layers}
\`\`\`

## The OpenAI leaf against its SDK, no socket (\`scripts/bench/leaf.ts\`, in process)

Both given a \`fetch\` that answers at once with the minimal upstream's bodies: what the leaf adds to the SDK's
own work, with no network, server or second process in the figure.

\`\`\`
${results.leaf}
\`\`\`
`

  // A bar chart of the p50 and throughput ratios to the raw SDK (minimal upstream).
  const bars = results.http.filter((m) => m.variant !== "sdk" && upstreamOf(m) === "minimal" && !providerVariants.has(m.variant))
  const width = 760
  const rowHeight = 22
  const left = 230
  const scale = (r: number) => Math.min(r, 3) / 3 * (width - left - 60)
  const height = 60 + bars.length * rowHeight * 2
  const svgRows = bars.map((m, i) => {
    const b = baseline(m)
    const y = 40 + i * rowHeight * 2
    const latency = m.p50Ms / b.p50Ms
    const throughput = m.rps / b.rps
    return `<text x="${left - 8}" y="${y + 14}" text-anchor="end">${m.variant} c=${m.concurrency} ${m.stream ? "stream" : "whole"}</text>
<rect x="${left}" y="${y}" width="${scale(latency)}" height="${rowHeight - 6}" fill="#4e79a7"/><text x="${left + scale(latency) + 4}" y="${
      y + 12
    }">${f(latency)}× p50</text>
<rect x="${left}" y="${y + rowHeight - 4}" width="${scale(throughput)}" height="${rowHeight - 6}" fill="#f28e2b"/><text x="${
      left + scale(throughput) + 4
    }" y="${y + rowHeight + 8}">${f(throughput)}× req/s</text>`
  })
  const one = left + scale(1)
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="11">
<rect width="100%" height="100%" fill="white"/>
<text x="10" y="20" font-size="13" font-weight="bold">Switchboard vs the raw openai SDK, minimal upstream (1.00× = the SDK; blue: p50, orange: req/s)</text>
<line x1="${one}" y1="30" x2="${one}" y2="${height - 10}" stroke="#999" stroke-dasharray="4 3"/>
${svgRows.join("\n")}
</svg>
`
  const summary = targets.map((t) => `${t.met ? "met " : "MISS"}  ${t.name}: ${t.value} (target ${t.target})`).join("\n")
  return { markdown, svg, summary }
}
