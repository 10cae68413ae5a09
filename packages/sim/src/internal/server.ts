/**
 * The simulator's HTTP core on `node:http`: routing by provider prefix,
 * auth, rate limits, fault application, stats and the `/_sim` control API.
 * Plain callbacks on the hot path (no per-request fibers) so loopback
 * throughput stays high; `Sim.ts` owns its lifecycle inside an Effect scope.
 *
 * @internal
 */
import * as Http from "node:http"
import * as Http2 from "node:http2"
import type { AddressInfo } from "node:net"
import { Exit, Schema } from "effect"
import * as Port from "./port.ts"
import { type Fault, FaultPlan, type Model, type Protocol, type SimConfig } from "../Config.ts"
import * as Faults from "../Faults.ts"
import * as Replay from "../Replay.ts"
import { anthropic } from "../protocols/anthropic.ts"
import { bedrock } from "../protocols/bedrock.ts"
import { gemini } from "../protocols/gemini.ts"
import { openai } from "../protocols/openai.ts"
import { analyse, generate, type GenerateState } from "./generate.ts"
import {
  type Completion,
  type ErrorSpec,
  errorSpec,
  isErrorSpec,
  kindOfStatus,
  type ProtocolImpl,
  type RateInfo,
  type Rendered,
  type Route,
  type SimRequest
} from "./protocol.ts"

const impls: Record<Protocol, ProtocolImpl> = { openai, anthropic, gemini, bedrock }
const jsonType: Record<Protocol, string> = {
  openai: "application/json",
  anthropic: "application/json",
  gemini: "application/json; charset=UTF-8",
  bedrock: "application/json"
}

/**
 * Per-request bookkeeping: whether the response was finished, cut on purpose
 * or closed by the client, and which outcome to count.
 */
interface Ctx {
  gone: boolean
  finished: boolean
  cut: boolean
  outcome: string
  stats: ModelStats | undefined
  timer: ReturnType<typeof setTimeout> | undefined
}

const ctxKey = Symbol.for("@switchboard/sim/ctx")
const ctxOf = (res: Http.ServerResponse): Ctx => (res as unknown as { [ctxKey]: Ctx })[ctxKey]

/** Per-model counters. */
export interface ModelStats {
  requests: number
  outcomes: Record<string, number>
}

/** The `GET /_sim/stats` document. */
export interface StatsSnapshot {
  readonly providers: Record<string, {
    readonly requests: number
    readonly models: Record<string, { readonly requests: number; readonly outcomes: Record<string, number> }>
  }>
}

class RateWindow {
  start = 0
  requests = 0
  tokens = 0
  readonly rpm: number | undefined
  readonly tpm: number | undefined
  constructor(rpm: number | undefined, tpm: number | undefined) {
    this.rpm = rpm
    this.tpm = tpm
  }
  roll(now: number): void {
    if (now - this.start >= 60_000) {
      this.start = now
      this.requests = 0
      this.tokens = 0
    }
  }
  info(now: number): RateInfo {
    return {
      requestsLimit: this.rpm,
      requestsRemaining: this.rpm === undefined ? 0 : Math.max(0, this.rpm - this.requests),
      tokensLimit: this.tpm,
      tokensRemaining: this.tpm === undefined ? 0 : Math.max(0, this.tpm - this.tokens),
      resetAt: this.start + 60_000,
      now
    }
  }
}

interface ProviderRuntime {
  readonly name: string
  readonly protocol: Protocol
  readonly impl: ProtocolImpl
  readonly models: ReadonlyArray<Model>
  readonly modelById: Map<string, Model>
  readonly ttftMs: number
  readonly perTokenMs: number
  readonly keys: ReadonlySet<string> | undefined
  readonly rate: RateWindow | undefined
  faults: Faults.FaultState
  readonly gen: GenerateState
  readonly stats: Map<string, ModelStats>
}

/** A running simulator. */
export interface Running {
  readonly url: string
  readonly port: number
  readonly stats: () => StatsSnapshot
  readonly setFaults: (name: string, plan: FaultPlan, mode?: "replace" | "add") => void
  readonly clearFaults: (name: string) => void
  readonly reset: () => void
  readonly close: () => Promise<void>
}

const decodePlan = Schema.decodeUnknownExit(FaultPlan, { onExcessProperty: "error" })

const planError = (exit: Exit.Exit<unknown, unknown>): string => {
  if (Exit.isSuccess(exit)) return ""
  const r = exit.cause.reasons[0]
  return r !== undefined && r._tag === "Fail" ? String((r.error as { message?: unknown }).message) : "invalid fault plan"
}

/** Starts listening; resolves once bound. */
export const listen = (config: SimConfig): Promise<Running> => {
  const fixturesDir = config.fixturesDir ?? Replay.defaultFixturesDir
  const providers = new Map<string, ProviderRuntime>()
  for (const [name, p] of Object.entries(config.providers)) {
    const rl = p.rateLimits
    providers.set(name, {
      name,
      protocol: p.protocol,
      impl: impls[p.protocol],
      models: p.models,
      modelById: new Map(p.models.map((m) => [m.id, m])),
      ttftMs: p.latency?.ttftMs ?? 0,
      perTokenMs: p.latency?.perTokenMs ?? 0,
      keys: p.apiKeys !== undefined && p.apiKeys.length > 0 ? new Set(p.apiKeys) : undefined,
      rate: rl !== undefined && (rl.requestsPerMinute !== undefined || rl.tokensPerMinute !== undefined)
        ? new RateWindow(rl.requestsPerMinute, rl.tokensPerMinute)
        : undefined,
      faults: Faults.makeState(p.faults, Date.now()),
      gen: { prefixes: new Set(), nextId: 1 },
      stats: new Map()
    })
  }

  const statsFor = (p: ProviderRuntime, model: string): ModelStats => {
    let s = p.stats.get(model)
    if (s === undefined) {
      s = { requests: 0, outcomes: {} }
      p.stats.set(model, s)
    }
    return s
  }

  const snapshot = (): StatsSnapshot => {
    const out: Record<string, { requests: number; models: Record<string, { requests: number; outcomes: Record<string, number> }> }> = {}
    for (const p of providers.values()) {
      const models: Record<string, { requests: number; outcomes: Record<string, number> }> = {}
      let total = 0
      for (const [m, s] of p.stats) {
        models[m] = { requests: s.requests, outcomes: { ...s.outcomes } }
        total += s.requests
      }
      out[p.name] = { requests: total, models }
    }
    return { providers: out }
  }

  const reset = () => {
    for (const p of providers.values()) {
      p.stats.clear()
      if (p.rate !== undefined) {
        p.rate.start = 0
        p.rate.requests = 0
        p.rate.tokens = 0
      }
      p.gen.prefixes.clear()
    }
  }

  const setFaults = (name: string, plan: FaultPlan, mode: "replace" | "add" = "replace") => {
    const p = providers.get(name)
    if (p === undefined) throw new Error(`No simulated provider named "${name}"`)
    if (mode === "add") Faults.addPlan(p.faults, plan, Date.now())
    else p.faults = Faults.makeState(plan, Date.now())
  }

  const clearFaults = (name: string) => {
    const p = providers.get(name)
    if (p === undefined) throw new Error(`No simulated provider named "${name}"`)
    p.faults = Faults.makeState(undefined, Date.now())
  }

  const sendJson = (res: Http.ServerResponse, status: number, value: unknown) => {
    const body = JSON.stringify(value)
    res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(body) })
    res.end(body)
  }

  const send = (res: Http.ServerResponse, r: Rendered) => {
    const body = typeof r.body === "string" ? Buffer.from(r.body, "utf8") : r.body
    res.writeHead(r.status, { ...r.headers, "content-length": body.byteLength } as Http.OutgoingHttpHeaders)
    res.end(body)
  }

  // ---- control API -------------------------------------------------------

  const control = (req: Http.IncomingMessage, res: Http.ServerResponse, path: string, query: URLSearchParams, body: string) => {
    const method = req.method ?? "GET"
    if (path === "/_sim/stats" && method === "GET") return sendJson(res, 200, snapshot())
    if (path === "/_sim/reset" && method === "POST") {
      reset()
      return sendJson(res, 200, { ok: true })
    }
    if (path === "/_sim/health") return sendJson(res, 200, { ok: true })
    if (path === "/_sim/config" && method === "GET") {
      const out: Record<string, unknown> = {}
      for (const p of providers.values()) {
        out[p.name] = { protocol: p.protocol, models: p.models, auth: p.keys !== undefined, rateLimits: config.providers[p.name]?.rateLimits ?? null }
      }
      return sendJson(res, 200, { providers: out })
    }
    const m = /^\/_sim\/([^/]+)\/faults$/.exec(path)
    if (m !== null) {
      const name = decodeURIComponent(m[1]!)
      const p = providers.get(name)
      if (p === undefined) return sendJson(res, 404, { error: { message: `No simulated provider named "${name}"` } })
      if (method === "GET") return sendJson(res, 200, p.faults.plan)
      if (method === "DELETE") {
        clearFaults(name)
        return sendJson(res, 200, { ok: true })
      }
      if (method === "POST" || method === "PUT") {
        let input: unknown
        try {
          input = body === "" ? {} : JSON.parse(body)
        } catch {
          return sendJson(res, 400, { error: { message: "Fault plan body is not valid JSON" } })
        }
        const exit = decodePlan(input)
        if (Exit.isFailure(exit)) return sendJson(res, 400, { error: { message: `Invalid fault plan: ${planError(exit)}` } })
        setFaults(name, exit.value, query.get("mode") === "add" ? "add" : "replace")
        return sendJson(res, 200, { ok: true, plan: providers.get(name)!.faults.plan })
      }
    }
    return sendJson(res, 404, { error: { message: `Unknown control endpoint ${method} ${path}` } })
  }

  // ---- provider requests ---------------------------------------------------

  const header = (req: Http.IncomingMessage, name: string): string | undefined => {
    const v = req.headers[name]
    return Array.isArray(v) ? v[0] : v
  }

  const handleProvider = (
    p: ProviderRuntime,
    route: Route,
    req: Http.IncomingMessage,
    res: Http.ServerResponse,
    query: URLSearchParams,
    bodyText: string
  ) => {
    const impl = p.impl
    if (p.keys !== undefined) {
      const denied = impl.auth(req.headers, query, p.keys, route)
      if (denied !== undefined) {
        if (route._tag === "generate") finish(res, p, route.model ?? "(unknown)", String(denied.status))
        return send(res, impl.error(denied, undefined))
      }
    }
    if (route._tag === "models") return sendJson(res, 200, impl.models(p.models, route))
    if (route._tag === "model") {
      const m = p.modelById.get(route.id)
      if (m === undefined) return send(res, impl.error(errorSpec(404, "not_found", { model: route.id, vertex: route.vertex }), undefined))
      return sendJson(res, 200, impl.model(m, route))
    }

    let body: unknown
    try {
      body = bodyText === "" ? undefined : JSON.parse(bodyText)
    } catch {
      body = undefined
    }
    const parsed = impl.parse(body, route)
    if (isErrorSpec(parsed)) {
      finish(res, p, route.model ?? "(unknown)", String(parsed.status))
      return send(res, impl.error(parsed, undefined))
    }
    const modelId = parsed.model
    let fault: Fault | undefined
    const faultHeader = header(req, "x-sim-fault")
    if (faultHeader !== undefined) {
      const f = Faults.parseFaultHeader(faultHeader)
      if (typeof f === "string") {
        finish(res, p, modelId, "400")
        return send(res, impl.error(errorSpec(400, "invalid_request", { message: f }), undefined))
      }
      fault = f
    } else if (!Faults.isEmpty(p.faults)) {
      fault = Faults.select(p.faults, modelId, Date.now())
    }
    if (fault !== undefined && fault.replay !== undefined) return replay(p, res, modelId, fault.replay, fault)

    const stall = fault?.stallMs ?? 0
    if (stall > 0) {
      finish(res, p, modelId, "stall")
      return later(res, stall, () => answer(p, res, parsed, fault, "stall"))
    }
    answer(p, res, parsed, fault, undefined)
  }

  const replay = (p: ProviderRuntime, res: Http.ServerResponse, model: string, path: string, fault: Fault | undefined) => {
    let recorded: Replay.Recorded
    try {
      recorded = Replay.load(fixturesDir, path, p.protocol)
    } catch (e) {
      finish(res, p, model, "400")
      return sendJson(res, 400, { error: { message: (e as Error).message, type: "sim_replay_error" } })
    }
    const go = () => {
      finish(res, p, model, "replay")
      res.writeHead(recorded.status, { ...recorded.headers, "content-length": recorded.body.byteLength } as Http.OutgoingHttpHeaders)
      res.end(recorded.body)
    }
    const stall = fault?.stallMs ?? 0
    if (stall > 0) later(res, stall, go)
    else go()
  }

  /** Registers the request in stats; the outcome is counted when the response closes. */
  const finish = (res: Http.ServerResponse, p: ProviderRuntime, model: string, outcome: string) => {
    const ctx = ctxOf(res)
    ctx.outcome = outcome
    if (ctx.stats === undefined) {
      ctx.stats = statsFor(p, model)
      ctx.stats.requests++
    }
  }

  const setOutcome = (res: Http.ServerResponse, outcome: string) => {
    ctxOf(res).outcome = outcome
  }

  const later = (res: Http.ServerResponse, ms: number, f: () => void) => {
    const ctx = ctxOf(res)
    ctx.timer = setTimeout(() => {
      ctx.timer = undefined
      if (!ctx.gone) f()
    }, ms)
  }

  /** Ends the exchange abruptly: no terminal chunk (HTTP/1.1) or RST_STREAM (HTTP/2). */
  const cut = (res: Http.ServerResponse) => {
    const ctx = ctxOf(res)
    ctx.cut = true
    const stream = (res as unknown as { stream?: Http2.ServerHttp2Stream }).stream
    if (stream !== undefined) {
      setTimeout(() => stream.close(Http2.constants.NGHTTP2_INTERNAL_ERROR), 5)
      return
    }
    const s = res.socket
    if (s !== null) s.destroySoon()
    else res.destroy()
  }

  const answer = (p: ProviderRuntime, res: Http.ServerResponse, req: SimRequest, fault: Fault | undefined, stalled: "stall" | undefined) => {
    const impl = p.impl
    const model = p.modelById.get(req.model)
    const now = Date.now()
    const rate = p.rate
    if (rate !== undefined) rate.roll(now)

    const fail = (e: ErrorSpec, outcome: string = String(e.status)) => {
      finish(res, p, req.model, outcome)
      send(res, impl.error(e, rate?.info(now)))
    }

    if (model === undefined) {
      return fail(p.protocol === "bedrock" ? errorSpec(400, "not_found", { model: req.model }) : errorSpec(404, "not_found", { model: req.model, vertex: req.vertex }))
    }
    if (fault?.status !== undefined) {
      return fail(errorSpec(fault.status, kindOfStatus(fault.status), {
        message: fault.message,
        model: req.model,
        retryAfterS: fault.retryAfter,
        retryAfterMs: fault.retryAfterMs,
        rateScope: "requests",
        limit: rate?.rpm,
        vertex: req.vertex
      }))
    }
    const base = analyse(req)
    if (rate !== undefined) {
      if (rate.rpm !== undefined && rate.requests >= rate.rpm) {
        const wait = rate.start + 60_000 - now
        return fail(errorSpec(429, "rate_limit", { model: req.model, rateScope: "requests", limit: rate.rpm, retryAfterS: Math.max(1, Math.ceil(wait / 1000)), retryAfterMs: wait }))
      }
      if (rate.tpm !== undefined && rate.tokens + base.promptTokens > rate.tpm) {
        const wait = rate.start + 60_000 - now
        return fail(errorSpec(429, "rate_limit", { model: req.model, rateScope: "tokens", limit: rate.tpm, retryAfterS: Math.max(1, Math.ceil(wait / 1000)), retryAfterMs: wait }))
      }
    }
    if (base.promptTokens > model.contextWindow) {
      return fail(errorSpec(400, "context_length", { promptTokens: base.promptTokens, limit: model.contextWindow, model: req.model }))
    }
    if (req.maxTokens !== undefined && req.maxTokens > model.maxOutput) {
      return fail(errorSpec(400, "invalid_request", {
        model: req.model,
        param: "max_tokens",
        message: p.protocol === "openai"
          ? `max_tokens is too large: ${req.maxTokens}. This model supports at most ${model.maxOutput} completion tokens, whereas you provided ${req.maxTokens}.`
          : p.protocol === "anthropic"
          ? `max_tokens: ${req.maxTokens} > ${model.maxOutput}, which is the maximum allowed number of output tokens for ${req.model}`
          : p.protocol === "gemini"
          ? `Unable to submit request because it has a maxOutputTokens value of ${req.maxTokens} but the supported range is from 1 (inclusive) to ${model.maxOutput + 1} (exclusive). Update the value and try again.`
          : `The maximum tokens you requested exceeds the model limit of ${model.maxOutput}. Try again with a maximum tokens value that is lower than ${model.maxOutput}.`
      }))
    }
    const c = generate(req, base, model, p.gen, fault?.contentFilter === true)
    let info: RateInfo | undefined
    if (rate !== undefined) {
      rate.requests++
      rate.tokens += c.promptTokens + c.outputTokens
      info = rate.info(now)
    }
    const headers = impl.successHeaders(c.requestId, info)
    const outcome = fault?.contentFilter === true ? "content-filter" : stalled ?? "ok"
    finish(res, p, req.model, outcome)
    if (req.stream) return streamOut(p, res, c, req, headers, fault)

    const bodyText = JSON.stringify(impl.json(c))
    const respond = () => {
      if (fault?.malformed === true) {
        setOutcome(res, "malformed")
        const bad = bodyText.slice(0, bodyText.length >> 1)
        res.writeHead(200, { ...headers, "content-type": jsonType[p.protocol], "content-length": Buffer.byteLength(bad) })
        return res.end(bad)
      }
      if (fault?.cutAfter !== undefined || fault?.truncateAfter !== undefined) {
        setOutcome(res, fault.cutAfter !== undefined ? "cut" : "truncated")
        res.writeHead(200, { ...headers, "content-type": jsonType[p.protocol], "content-length": Buffer.byteLength(bodyText) })
        res.write(bodyText.slice(0, bodyText.length >> 1))
        return cut(res)
      }
      res.writeHead(200, { ...headers, "content-type": jsonType[p.protocol], "content-length": Buffer.byteLength(bodyText) })
      res.end(bodyText)
    }
    const delay = p.ttftMs + p.perTokenMs * c.outputTokens
    if (delay > 0) later(res, delay, respond)
    else respond()
  }

  const streamOut = (
    p: ProviderRuntime,
    res: Http.ServerResponse,
    c: Completion,
    req: SimRequest,
    headers: Record<string, string>,
    fault: Fault | undefined
  ) => {
    const impl = p.impl
    const events = impl.stream(c, req)
    const head = { ...headers, "content-type": impl.streamContentType, "cache-control": "no-cache" }
    const plain = p.ttftMs === 0 && p.perTokenMs === 0 &&
      (fault === undefined || (fault.cutAfter === undefined && fault.streamErrorAfter === undefined &&
        fault.truncateAfter === undefined && fault.malformed !== true && fault.midStreamStallMs === undefined))
    res.writeHead(200, head)
    if (plain) {
      if (p.protocol === "bedrock") res.end(Buffer.concat(events.map((e) => e.data as Uint8Array)))
      else res.end(events.map((e) => e.data as string).join(""))
      return
    }
    const stallAt = fault?.midStreamStallMs !== undefined ? fault.stallAfter ?? 1 : -1
    if (fault?.cutAfter !== undefined) setOutcome(res, "cut")
    else if (fault?.truncateAfter !== undefined) setOutcome(res, "truncated")
    else if (fault?.streamErrorAfter !== undefined) setOutcome(res, "stream-error")
    else if (fault?.malformed === true) setOutcome(res, "malformed")
    else if (fault?.midStreamStallMs !== undefined) setOutcome(res, "stall")
    let i = 0
    let firstToken = true
    let waited = -1
    const step = () => {
      // Write every event that is due now, then schedule the next delayed one.
      for (;;) {
        if (fault?.cutAfter !== undefined && i >= fault.cutAfter) return cut(res)
        if (fault?.streamErrorAfter !== undefined && i >= fault.streamErrorAfter) return void res.end(impl.streamError(c))
        const ev = events[i]
        if (ev === undefined) return void res.end()
        if (fault?.truncateAfter !== undefined && i >= fault.truncateAfter) {
          const d = ev.data
          return void res.end(typeof d === "string" ? d.slice(0, Math.max(1, d.length >> 1)) : d.subarray(0, Math.max(1, d.length >> 1)))
        }
        let delay = 0
        if (ev.tokens > 0) {
          delay = firstToken ? p.ttftMs : p.perTokenMs * ev.tokens
          firstToken = false
        }
        if (i === stallAt) delay += fault?.midStreamStallMs ?? 0
        if (delay > 0 && waited !== i) {
          waited = i
          return later(res, delay, step)
        }
        res.write(ev.data)
        if (fault?.malformed === true && i === 0) res.write(impl.malformedEvent())
        i++
      }
    }
    step()
  }

  const handler = (req: Http.IncomingMessage, res: Http.ServerResponse) => {
    const ctx: Ctx = { gone: false, finished: false, cut: false, outcome: "ok", stats: undefined, timer: undefined }
    ;(res as unknown as { [ctxKey]: Ctx })[ctxKey] = ctx
    // HTTP/2 compat responses emit 'finish' on any stream close (even a client
    // RST_STREAM), so there "finished" means we ended the response ourselves.
    const h2 = (res as unknown as { stream?: unknown }).stream !== undefined
    if (!h2) {
      res.once("finish", () => {
        ctx.finished = true
      })
    }
    res.once("close", () => {
      ctx.gone = true
      if (ctx.timer !== undefined) clearTimeout(ctx.timer)
      const s = ctx.stats
      if (s !== undefined) {
        const done = h2 ? res.writableEnded : ctx.finished
        const o = done || ctx.cut ? ctx.outcome : "aborted"
        s.outcomes[o] = (s.outcomes[o] ?? 0) + 1
      }
    })
    const url = req.url ?? "/"
    const q = url.indexOf("?")
    const path = q === -1 ? url : url.slice(0, q)
    const query = new URLSearchParams(q === -1 ? "" : url.slice(q + 1))
    const method = req.method ?? "GET"
    const run = (bodyText: string) => {
      try {
        if (path.startsWith("/_sim/")) return control(req, res, path, query, bodyText)
        const slash = path.indexOf("/", 1)
        const name = path.slice(1, slash === -1 ? undefined : slash)
        const sub = slash === -1 ? "/" : path.slice(slash)
        const p = providers.get(name)
        if (p === undefined) {
          return sendJson(res, 404, { error: { message: `No simulated provider is mounted at /${name}`, type: "sim_not_found" } })
        }
        const replayPath = header(req, "x-sim-replay")
        if (replayPath !== undefined) {
          // Replays are served on any path under the prefix (e.g. legacy /v1/completions).
          if (p.keys !== undefined) {
            const denied = p.impl.auth(req.headers, query, p.keys, p.impl.route(method, sub, query))
            if (denied !== undefined) return send(res, p.impl.error(denied, undefined))
          }
          return replay(p, res, "(replay)", replayPath, undefined)
        }
        const route = p.impl.route(method, sub, query)
        if (route === undefined) {
          return send(res, p.impl.error(errorSpec(404, "not_found", { message: `Invalid URL (${method} ${sub})` }), undefined))
        }
        handleProvider(p, route, req, res, query, bodyText)
      } catch (e) {
        if (!res.headersSent) sendJson(res, 500, { error: { message: `sim internal error: ${(e as Error).message}` } })
        else res.destroy()
      }
    }
    if (method === "GET" || method === "HEAD") {
      req.resume()
      return run("")
    }
    const chunks: Array<Buffer> = []
    req.on("data", (c: Buffer) => chunks.push(c))
    req.on("end", () => run(chunks.length === 1 ? chunks[0]!.toString("utf8") : Buffer.concat(chunks).toString("utf8")))
  }

  const { close, server } = Port.make(
    handler as unknown as Port.Handler,
    { keepAlive: true, keepAliveTimeout: 65_000, requestTimeout: 0 }
  )
  server.on("error", () => undefined)
  return new Promise((resolve, reject) => {
    server.once("error", reject)
    server.listen(config.port ?? 0, config.host ?? "127.0.0.1", () => {
      server.off("error", reject)
      const addr = server.address() as AddressInfo
      const host = addr.family === "IPv6" ? `[${addr.address}]` : addr.address
      resolve({
        url: `http://${host}:${addr.port}`,
        port: addr.port,
        stats: snapshot,
        setFaults,
        clearFaults,
        reset,
        close
      })
    })
  })
}
