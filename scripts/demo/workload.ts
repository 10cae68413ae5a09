/**
 * The demo's workload: short chats, cache repeats, streams, a burst against
 * the rate limit, one prompt too long for the first provider, and long
 * reports that spend enough to cross the soft budget threshold. Requests
 * leave `maxTokens` out: the models' `defaults.maxTokens` fill it in, and
 * the budget reserves that much output, not the model's whole max output.
 */
import { type LLM, Llm, type LlmError, type LlmRequest } from "@switchboard/core"
import { Effect, Stream } from "effect"

/** What a request is for, which says how it is run and reported. */
export type Kind = "chat" | "repeat" | "stream" | "burst" | "long" | "spend"

/** One request of the workload. */
export interface Job {
  readonly kind: Kind
  readonly request: LlmRequest.LlmRequest
}

/** A group of jobs run concurrently; phases run one after another. */
export interface Phase {
  readonly name: string
  readonly jobs: ReadonlyArray<Job>
  readonly concurrency: number
}

/** How one request ended. */
export interface Outcome {
  readonly kind: Kind
  readonly ok: boolean
  /** `ok`, the `LlmError` tag, or `DEFECT: …` for a defect (a bug: the verdict fails). */
  readonly tag: string
  readonly provider: string
  readonly startedAt: number
  readonly latencyMs: number
  readonly cached: boolean
}

const topics = ["tides", "volcanoes", "bees", "compilers", "glaciers", "lighthouses", "orbits", "rivers", "ferns", "radar"]
const ask = (text: string, extra: Partial<LlmRequest.LlmRequest> = {}): LlmRequest.LlmRequest => ({
  messages: [{ role: "user", content: text }],
  deadline: 15_000,
  ...extra
})

/** The phases for about `n` requests. */
export const plan = (n: number): ReadonlyArray<Phase> => {
  const share = (f: number) => Math.max(5, Math.round(n * f))
  const jobs = (kind: Kind, count: number, request: (i: number) => LlmRequest.LlmRequest) =>
    Array.from({ length: count }, (_, i): Job => ({ kind, request: request(i) }))
  return [
    {
      name: "chats: short questions",
      concurrency: 8,
      jobs: jobs("chat", share(0.3), (i) => ask(`Tell me one fact about ${topics[i % 10]} (#${i}).`))
    },
    {
      name: "repeats: the same five questions again and again (the cache answers)",
      concurrency: 8,
      jobs: jobs("repeat", share(0.15), (i) => ask(`Define ${topics[i % 5]} in one line.`, { temperature: 0 }))
    },
    {
      name: "streams: answers token by token",
      concurrency: 8,
      jobs: jobs("stream", share(0.15), (i) => ask(`Stream a haiku about ${topics[i % 10]} (#${i}).`))
    },
    {
      name: "burst: many at once, over the rate limit (calls wait for a slot)",
      concurrency: 64,
      jobs: jobs("burst", share(0.2), (i) => ask(`Quick answer ${i}: 2+2?`))
    },
    {
      name: "long: one prompt too long for openai's context window",
      concurrency: 1,
      jobs: jobs("long", 1, () => ask(`Summarise this log:\n${"error timeout retry ok ".repeat(34_000)}`, { deadline: 30_000 }))
    },
    {
      name: "spend: long reports, until the budget's soft limit moves calls to the cheap route",
      // Each call first reserves its worst case, priced at its route's dearest model (here about
      // $0.024 on the default route, ten times what openai then bills). Two at a time, the
      // reservations in flight fit in the 20 % between the soft limit and the limit.
      concurrency: 2,
      // Enough to cross the soft limit and run a while on the cheap route, whatever the size.
      jobs: jobs("spend", Math.max(60, share(0.22)), (i) => ask(`Write a long report on ${topics[i % 10]} (#${i}). ${"Context line. ".repeat(5_000)}`))
    }
  ]
}

/** Runs one job; never fails: a typed error or a defect becomes its outcome. */
export const run = (job: Job): Effect.Effect<Outcome, never, LLM> => {
  const startedAt = performance.now()
  const call = job.kind === "stream"
    ? Effect.flatMap(
      Stream.runLast(Llm.stream(job.request)),
      (last) =>
        last._tag === "Some" && last.value.type === "finish"
          ? Effect.succeed(last.value.response)
          : Effect.die(new Error("a stream ended without its finish part"))
    )
    : Llm.generate(job.request)
  const failed = (tag: string, provider: string): Outcome => ({
    kind: job.kind,
    ok: false,
    tag,
    provider,
    startedAt,
    latencyMs: performance.now() - startedAt,
    cached: false
  })
  return call.pipe(
    Effect.map((response): Outcome => ({
      kind: job.kind,
      ok: response.text.length > 0 || response.toolCalls.length > 0,
      tag: response.text.length > 0 || response.toolCalls.length > 0 ? "ok" : "EmptyAnswer",
      provider: response.provider,
      startedAt,
      latencyMs: performance.now() - startedAt,
      cached: response.cached
    })),
    Effect.catch((error: LlmError.LlmError) => Effect.succeed(failed(error._tag, error.provider))),
    Effect.catchDefect((defect) => Effect.succeed(failed(`DEFECT: ${String(defect)}`, "?")))
  )
}
