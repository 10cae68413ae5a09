import { assert, describe, it, layer } from "@effect/vitest"
import { Effect } from "effect"
import { Faults, Sim } from "../src/index.ts"
import { call, config, openaiClient, rejection } from "./helpers.ts"

const req = (model = "gpt-4o-mini") => ({ model, messages: [{ role: "user" as const, content: "fault me" }] })

/** Status of one OpenAI call: 200 or the APIError status. */
const statusOf = (url: string, model = "gpt-4o-mini", headers: Record<string, string> = {}) =>
  call(() => openaiClient(url).chat.completions.create(req(model), { headers }).then(() => 200, (e: any) => e.status ?? -1))

const drainStream = (url: string, headers: Record<string, string>) =>
  call(async () => {
    const chunks: Array<any> = []
    try {
      const s = await openaiClient(url).chat.completions.create({ ...req(), stream: true, stream_options: { include_usage: true } }, { headers })
      for await (const c of s) chunks.push(c)
      return { chunks, error: undefined as any }
    } catch (error) {
      return { chunks, error: error as any }
    }
  })

/** Polls stats (bounded: 50 × 20 ms) until `pred` holds. */
const statsUntil = (sim: Sim.SimHandle, pred: (s: Sim.Stats) => boolean) =>
  Effect.gen(function*() {
    for (let i = 0; i < 50; i++) {
      const s = yield* sim.stats
      if (pred(s)) return s
      yield* Effect.sleep("20 millis")
    }
    return yield* sim.stats
  })

const outcomes = (s: Sim.Stats, model = "gpt-4o-mini") => s.providers.openai?.models[model]?.outcomes ?? {}

layer(Sim.layer(config()), { excludeTestServices: true })("fault plans", (it) => {
  it.effect("a seeded error mix is reproducible and mixes failures with successes", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const run = Effect.gen(function*() {
        yield* sim.setFaults("openai", { seed: 42, mix: [{ rate: 0.3, status: 500 }, { rate: 0.2, status: 503 }] })
        const out: Array<number> = []
        for (let i = 0; i < 30; i++) out.push(yield* statusOf(sim.url))
        return out
      })
      const a = yield* run
      const b = yield* run
      assert.deepStrictEqual(a, b)
      assert.include(a, 200)
      assert.include(a, 500)
      assert.include(a, 503)
      yield* sim.clearFaults("openai")
    }))

  it.effect("a scripted sequence: the next 3 calls get 429 with retry-after 2, then ok", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      yield* sim.setFaults("openai", { script: [{ status: 429, retryAfter: 2, times: 3 }] })
      const errors = []
      for (let i = 0; i < 3; i++) errors.push(yield* rejection(() => openaiClient(sim.url).chat.completions.create(req())))
      for (const e of errors) {
        assert.strictEqual(e.status, 429)
        assert.strictEqual(e.headers.get("retry-after"), "2")
      }
      assert.strictEqual(yield* statusOf(sim.url), 200)
      yield* sim.clearFaults("openai")
    }))

  it.effect("per-model plans only hit that model; ok steps let calls through", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      yield* sim.setFaults("openai", { models: { "gpt-4o": { script: [{ ok: true }, { status: 500 }] } } })
      assert.strictEqual(yield* statusOf(sim.url, "gpt-4o-mini"), 200)
      assert.strictEqual(yield* statusOf(sim.url, "gpt-4o"), 200)
      assert.strictEqual(yield* statusOf(sim.url, "gpt-4o"), 500)
      assert.strictEqual(yield* statusOf(sim.url, "gpt-4o"), 200)
      yield* sim.clearFaults("openai")
    }))

  it.effect("outage windows: now for N ms, and from a start offset", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      yield* sim.setFaults("openai", { outages: [{ durationMs: 250 }] })
      assert.strictEqual(yield* statusOf(sim.url), 503)
      yield* Effect.sleep("300 millis")
      assert.strictEqual(yield* statusOf(sim.url), 200)
      yield* sim.setFaults("openai", { outages: [{ startMs: 150, durationMs: 10_000, status: 500 }] })
      assert.strictEqual(yield* statusOf(sim.url), 200)
      yield* Effect.sleep("200 millis")
      assert.strictEqual(yield* statusOf(sim.url), 500)
      yield* sim.clearFaults("openai")
    }))

  it.effect("stall holds the response before headers; stats count it as stall", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      yield* sim.reset
      const t0 = Date.now()
      assert.strictEqual(yield* statusOf(sim.url, "gpt-4o-mini", { "x-sim-fault": "stall-ms=300" }), 200)
      assert.isAtLeast(Date.now() - t0, 290)
      const s = yield* statsUntil(sim, (s) => outcomes(s).stall === 1)
      assert.strictEqual(outcomes(s).stall, 1)
    }))

  it.effect("mid-stream stall pauses after N events", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const t0 = Date.now()
      const r = yield* drainStream(sim.url, { "x-sim-fault": "stall-mid-ms=250;stall-after=2" })
      assert.isUndefined(r.error)
      assert.isAtLeast(Date.now() - t0, 240)
      assert.isDefined(r.chunks[r.chunks.length - 1].usage)
    }))

  it.effect("cut-after destroys the stream with no terminal event", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      yield* sim.reset
      const r = yield* drainStream(sim.url, { "x-sim-fault": "cut-after=3" })
      assert.isDefined(r.error)
      assert.strictEqual(r.chunks.length, 3)
      const s = yield* statsUntil(sim, (s) => outcomes(s).cut === 1)
      assert.strictEqual(outcomes(s).cut, 1)
    }))

  it.effect("truncated SSE: a half JSON line then close, no usage chunk", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const r = yield* drainStream(sim.url, { "x-sim-fault": "truncate=2" })
      assert.isAtMost(r.chunks.length, 2)
      assert.isUndefined(r.chunks.find((c) => c.usage))
    }))

  it.effect("malformed JSON body fails the SDK's parse; malformed stream event too", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      yield* sim.reset
      const e = yield* rejection(() => openaiClient(sim.url).chat.completions.create(req(), { headers: { "x-sim-fault": "malformed" } }))
      assert.match(String(e), /JSON|Unexpected|Unterminated/i)
      const r = yield* drainStream(sim.url, { "x-sim-fault": "malformed" })
      assert.isDefined(r.error)
      const s = yield* statsUntil(sim, (s) => outcomes(s).malformed === 2)
      assert.strictEqual(outcomes(s).malformed, 2)
    }))

  it.effect("OpenAI in-band stream error surfaces as an APIError", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const r = yield* drainStream(sim.url, { "x-sim-fault": "stream-error=2" })
      assert.strictEqual(r.chunks.length, 2)
      assert.match(String(r.error?.message), /server had an error/)
    }))

  it.effect("a client abort is observed in stats as aborted", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      yield* sim.reset
      const controller = new AbortController()
      const pending = openaiClient(sim.url).chat.completions.create(req(), { headers: { "x-sim-fault": "stall-ms=5000" }, signal: controller.signal })
      yield* Effect.sleep("100 millis")
      controller.abort()
      yield* call(() => pending.then(() => undefined, () => undefined))
      const s = yield* statsUntil(sim, (s) => outcomes(s).aborted === 1)
      assert.strictEqual(outcomes(s).aborted, 1)
    }))

  it.effect("an invalid x-sim-fault header is a 400 naming the item", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const e = yield* rejection(() => openaiClient(sim.url).chat.completions.create(req(), { headers: { "x-sim-fault": "explode=1" } }))
      assert.strictEqual(e.status, 400)
      assert.match(e.message, /unknown item "explode"/)
    }))
})

describe("control API over HTTP", () => {
  it.live("POST/GET/DELETE /_sim/{name}/faults, GET /_sim/stats, POST /_sim/reset", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.start(config())
      const post = (path: string, body: unknown) =>
        call(() => fetch(`${sim.url}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) }))
      const set = yield* post("/_sim/openai/faults", { script: [{ status: 500 }] })
      assert.strictEqual(set.status, 200)
      const added = yield* post("/_sim/openai/faults?mode=add", { script: [{ status: 503 }] })
      assert.strictEqual(added.status, 200)
      const plan = yield* call(() => fetch(`${sim.url}/_sim/openai/faults`).then((r) => r.json()))
      assert.strictEqual(plan.script.length, 2)
      assert.strictEqual(yield* statusOf(sim.url), 500)
      assert.strictEqual(yield* statusOf(sim.url), 503)
      assert.strictEqual(yield* statusOf(sim.url), 200)
      const bad = yield* post("/_sim/openai/faults", { script: [{ status: "often" }] })
      assert.strictEqual(bad.status, 400)
      assert.match((yield* call(() => bad.json())).error.message, /\["script"\]\[0\]\["status"\]/)
      yield* post("/_sim/openai/faults", { outages: [{ durationMs: 60_000 }] })
      assert.strictEqual(yield* statusOf(sim.url), 503)
      const del = yield* call(() => fetch(`${sim.url}/_sim/openai/faults`, { method: "DELETE" }))
      assert.strictEqual(del.status, 200)
      assert.strictEqual(yield* statusOf(sim.url), 200)
      const stats = yield* call(() => fetch(`${sim.url}/_sim/stats`).then((r) => r.json()))
      assert.strictEqual(stats.providers.openai.models["gpt-4o-mini"].requests, 5)
      assert.deepStrictEqual(stats.providers.openai.models["gpt-4o-mini"].outcomes, { "500": 1, "503": 2, ok: 2 })
      yield* post("/_sim/reset", {})
      const after = yield* call(() => fetch(`${sim.url}/_sim/stats`).then((r) => r.json()))
      assert.deepStrictEqual(after.providers.openai.models, {})
      const unknown = yield* post("/_sim/nope/faults", {})
      assert.strictEqual(unknown.status, 404)
    }))

  it.live("latency model: time to first token and per-token delay", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.start(config({ latency: { ttftMs: 150, perTokenMs: 5 } }))
      const t0 = Date.now()
      const r = yield* drainStream(sim.url, {})
      assert.isUndefined(r.error)
      const content = r.chunks.filter((c) => c.choices[0]?.delta?.content).length
      assert.isAtLeast(Date.now() - t0, 150 + 5 * (content - 1) - 10)
    }))

  it.live("faults set in the config apply from the start", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.start(config({ faults: { script: [{ status: 529 }] } }))
      assert.strictEqual(yield* statusOf(sim.url), 529)
      assert.strictEqual(yield* statusOf(sim.url), 200)
    }))
})

describe("x-sim-fault parsing", () => {
  it("parses every item", () => {
    assert.deepStrictEqual(Faults.parseFaultHeader("status=429;retry-after=2"), { status: 429, retryAfter: 2 })
    assert.deepStrictEqual(Faults.parseFaultHeader("cut-after=3; stall-ms=5000"), { cutAfter: 3, stallMs: 5000 })
    assert.deepStrictEqual(Faults.parseFaultHeader("malformed;content-filter;stream-error"), { malformed: true, contentFilter: true, streamErrorAfter: 1 })
    assert.deepStrictEqual(Faults.parseFaultHeader("retry-after-ms=1500;truncate=2;replay=openai/chat-text.json"), {
      retryAfterMs: 1500,
      truncateAfter: 2,
      replay: "openai/chat-text.json"
    })
    assert.match(String(Faults.parseFaultHeader("status=200")), /400\.\.599/)
    assert.match(String(Faults.parseFaultHeader("stall-ms=soon")), /stall-ms/)
  })
})
