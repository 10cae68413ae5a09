/**
 * The minimal upstream for `pnpm bench`: a tiny `node:http` server on
 * loopback that answers every `POST …/chat/completions` with one fixed
 * OpenAI `chat.completion` (or, when the body asks `"stream":true`, one fixed
 * SSE stream of three chunks, a usage chunk and `[DONE]`), keep-alive on.
 * It parses nothing but the `"stream":true` marker, so what a client costs is
 * the client's own, undiluted by a simulator.
 *
 * `GET /stats` answers this process's CPU time (µs) and request count, so the
 * bench can say what each client made the upstream spend per request.
 *
 * Usage: `node scripts/bench/upstream.ts [--port 0]`; prints
 * `listening on http://127.0.0.1:<port>` and exits with its parent.
 */
import { createServer } from "node:http"
import * as bodies from "./bodies.ts"

const portAt = process.argv.indexOf("--port")
const port = portAt === -1 ? 0 : Number(process.argv[portAt + 1] ?? 0)

const completion = Buffer.from(bodies.completion)
const sse = Buffer.from(bodies.sse)
const jsonHeaders = { "content-type": "application/json", "content-length": String(completion.length) }
const sseHeaders = { "content-type": "text/event-stream", "cache-control": "no-cache", "content-length": String(sse.length) }
const marker = Buffer.from(bodies.streamMarker)

let requests = 0
const server = createServer({ keepAlive: true, keepAliveTimeout: 60_000 }, (req, res) => {
  if (req.method === "GET" && req.url === "/stats") {
    const cpu = process.cpuUsage()
    res.writeHead(200, { "content-type": "application/json" })
    res.end(JSON.stringify({ cpuUs: cpu.user + cpu.system, requests }))
    return
  }
  const parts: Array<Buffer> = []
  req.on("data", (data: Buffer) => parts.push(data))
  req.on("end", () => {
    requests++
    if (req.method !== "POST" || req.url === undefined || !req.url.endsWith("/chat/completions")) {
      res.writeHead(404, { "content-type": "application/json" })
      res.end(`{"error":{"message":"not found","type":"invalid_request_error"}}`)
      return
    }
    const body = parts.length === 1 ? parts[0]! : Buffer.concat(parts)
    if (body.includes(marker)) {
      res.writeHead(200, sseHeaders)
      res.end(sse)
    } else {
      res.writeHead(200, jsonHeaders)
      res.end(completion)
    }
  })
})
server.keepAliveTimeout = 60_000
server.headersTimeout = 61_000
server.listen(port, "127.0.0.1", () => {
  const address = server.address()
  if (address !== null && typeof address === "object") console.log(`listening on http://127.0.0.1:${address.port}`)
})
// Exits with its parent: stdin closes when the parent goes.
process.stdin.on("end", () => process.exit(0)).on("error", () => process.exit(0))
process.stdin.resume()
