/**
 * Replay mode: serve a recorded fixture file as the real API sent it.
 *
 * - `*.http.json`: its `status`, recorded `headers` (minus hop-by-hop ones
 *   such as content-length / transfer-encoding / content-encoding) and `body`.
 * - `*.json`: the body with status 200, or the status an error body names
 *   (`error.code` for Gemini, 400 for OpenAI/Anthropic error bodies).
 * - `*.sse`: the raw bytes with `content-type: text/event-stream` (or the
 *   sibling `*.headers.json`).
 * - `*.chunks.jsonl` / `*.events.jsonl`: each line framed as the protocol's
 *   SSE (OpenAI adds `data: [DONE]`, Anthropic adds `event:` lines, Gemini
 *   uses `\r\n\r\n`) or, for Bedrock, as event-stream frames.
 * - `*.eventstream.bin`: the raw bytes as `application/vnd.amazon.eventstream`;
 *   `*.eventstream.decoded.jsonl` is re-encoded into frames.
 * - `*.headers.json`: serves its sibling `.sse` / `.eventstream.bin` with those headers.
 *
 * The protocol of a fixture is the first folder of its path (`openai`,
 * `anthropic`, `google`/`gemini`, `bedrock`), else the serving provider's.
 *
 * @since 0.1.0
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import type { Protocol } from "./Config.ts"
import type { ProtocolImpl } from "./internal/protocol.ts"
import { isRecord } from "./internal/util.ts"
import { anthropic } from "./protocols/anthropic.ts"
import { bedrock } from "./protocols/bedrock.ts"
import { gemini } from "./protocols/gemini.ts"
import { openai } from "./protocols/openai.ts"

/**
 * The fixtures shipped with the package (`packages/sim/fixtures`).
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultFixturesDir: string = fileURLToPath(new URL("../fixtures", import.meta.url))

/**
 * A replayable response.
 *
 * @since 0.1.0
 * @category models
 */
export interface Recorded {
  readonly status: number
  readonly headers: Record<string, string | ReadonlyArray<string>>
  readonly body: Uint8Array
}

const protocols: Record<Protocol, ProtocolImpl> = { openai, anthropic, gemini, bedrock }

const hopByHop = new Set([
  "content-length",
  "transfer-encoding",
  "content-encoding",
  "connection",
  "keep-alive",
  "proxy-connection",
  "upgrade",
  "te",
  "trailer",
  "date"
])

const cleanHeaders = (h: unknown): Record<string, string | ReadonlyArray<string>> => {
  const out: Record<string, string | ReadonlyArray<string>> = {}
  if (!isRecord(h)) return out
  for (const [k, v] of Object.entries(h)) {
    const key = k.toLowerCase()
    if (hopByHop.has(key)) continue
    if (Array.isArray(v)) out[key] = v.map(String)
    else if (v !== undefined && v !== null) out[key] = String(v)
  }
  return out
}

const protocolOf = (rel: string, fallback: Protocol): ProtocolImpl => {
  const first = rel.split(/[\\/]/)[0]
  switch (first) {
    case "openai":
      return openai
    case "anthropic":
      return anthropic
    case "google":
    case "gemini":
      return gemini
    case "bedrock":
      return bedrock
    default:
      return protocols[fallback]
  }
}

const inferStatus = (body: unknown): number => {
  if (!isRecord(body)) return 200
  if (isRecord(body.error)) {
    if (typeof body.error.code === "number") return body.error.code
    return body.type === "error" && body.error.type === "not_found_error" ? 404 : 400
  }
  return 200
}

const cache = new Map<string, Recorded>()

/**
 * Loads (and caches) a fixture relative to `dir`. Throws an Error with a clear
 * message when the path escapes `dir` or the file cannot be served.
 *
 * @since 0.1.0
 * @category replay
 */
export const load = (dir: string, rel: string, fallback: Protocol): Recorded => {
  const full = Path.resolve(dir, rel)
  const root = Path.resolve(dir)
  if (!full.startsWith(root + Path.sep)) throw new Error(`replay path escapes the fixtures directory: ${rel}`)
  const key = `${fallback}:${full}`
  const hit = cache.get(key)
  if (hit !== undefined) return hit
  const recorded = build(full, rel, fallback)
  cache.set(key, recorded)
  return recorded
}

const sseHeaders = (full: string, stem: string, fallbackType: string): { status: number; headers: Record<string, string | ReadonlyArray<string>> } => {
  const side = `${stem}.headers.json`
  if (Fs.existsSync(side)) {
    const meta = JSON.parse(Fs.readFileSync(side, "utf8")) as Record<string, unknown>
    const headers = cleanHeaders(meta.headers)
    if (headers["content-type"] === undefined) headers["content-type"] = fallbackType
    return { status: typeof meta.status === "number" ? meta.status : 200, headers }
  }
  void full
  return { status: 200, headers: { "content-type": fallbackType } }
}

const build = (full: string, rel: string, fallback: Protocol): Recorded => {
  const name = Path.basename(full)
  const proto = protocolOf(rel, fallback)
  if (!Fs.existsSync(full)) throw new Error(`replay fixture not found: ${rel}`)
  if (name.endsWith(".http.json")) {
    const rec = JSON.parse(Fs.readFileSync(full, "utf8")) as Record<string, unknown>
    const headers = cleanHeaders(rec.headers)
    if (headers["content-type"] === undefined) headers["content-type"] = "application/json"
    const body = typeof rec.body === "string" ? rec.body : JSON.stringify(rec.body, null, 2)
    return { status: typeof rec.status === "number" ? rec.status : 200, headers, body: Buffer.from(body, "utf8") }
  }
  if (name.endsWith(".headers.json")) {
    const stem = full.slice(0, -".headers.json".length)
    for (const ext of [".sse", ".eventstream.bin"]) {
      if (Fs.existsSync(stem + ext)) {
        const type = ext === ".sse" ? "text/event-stream" : "application/vnd.amazon.eventstream"
        const { headers, status } = sseHeaders(full, stem, type)
        return { status, headers, body: Fs.readFileSync(stem + ext) }
      }
    }
    throw new Error(`replay: no .sse or .eventstream.bin next to ${rel}`)
  }
  if (name.endsWith(".sse")) {
    const stem = full.slice(0, -".sse".length)
    const { headers, status } = sseHeaders(full, stem, "text/event-stream")
    return { status, headers, body: Fs.readFileSync(full) }
  }
  if (name.endsWith(".eventstream.bin")) {
    const stem = full.slice(0, -".eventstream.bin".length)
    const { headers, status } = sseHeaders(full, stem, "application/vnd.amazon.eventstream")
    return { status, headers, body: Fs.readFileSync(full) }
  }
  if (name.endsWith(".jsonl")) {
    const lines = Fs.readFileSync(full, "utf8").split("\n").filter((l) => l.trim() !== "")
    const parts: Array<Buffer> = lines.map((l) => {
      const f = proto.frameReplay(l)
      return typeof f === "string" ? Buffer.from(f, "utf8") : Buffer.from(f)
    })
    if (proto.replayTerminator !== undefined) parts.push(Buffer.from(proto.replayTerminator, "utf8"))
    return { status: 200, headers: { "content-type": proto.streamContentType }, body: Buffer.concat(parts) }
  }
  if (name.endsWith(".json")) {
    const text = Fs.readFileSync(full)
    const status = inferStatus(JSON.parse(text.toString("utf8")))
    const type = proto === gemini ? "application/json; charset=UTF-8" : "application/json"
    const headers: Record<string, string> = { "content-type": type }
    if (proto === bedrock && status >= 400) {
      headers["x-amzn-errortype"] = "ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/"
    }
    return { status, headers, body: text }
  }
  throw new Error(`replay: unsupported fixture type: ${rel}`)
}

/**
 * Lists every servable fixture under `dir` (relative paths, sorted), skipping
 * Markdown notes.
 *
 * @since 0.1.0
 * @category replay
 */
export const list = (dir: string = defaultFixturesDir): Array<string> => {
  const out: Array<string> = []
  const walk = (d: string) => {
    for (const e of Fs.readdirSync(d, { withFileTypes: true })) {
      const p = Path.join(d, e.name)
      if (e.isDirectory()) walk(p)
      else if (!e.name.endsWith(".md")) out.push(Path.relative(dir, p).split(Path.sep).join("/"))
    }
  }
  walk(dir)
  return out.sort()
}
