/**
 * The minimal upstream for `pnpm bench`: a tiny server on loopback that
 * answers every call with one fixed body, keep-alive on, for the four wire
 * protocols, routed by path alone:
 *
 * - OpenAI `POST …/chat/completions`: one `chat.completion`, or, when the body
 *   asks `"stream":true`, one SSE stream of three chunks, a usage chunk and
 *   `[DONE]` (`bodies.ts`);
 * - Anthropic `POST …/v1/messages`: one `message`, or its SSE stream when the
 *   body asks `"stream":true`;
 * - Gemini `POST …/models/<m>:generateContent` (one response) and
 *   `…:streamGenerateContent?alt=sse` (three SSE chunks);
 * - Bedrock `POST /model/<id>/converse` (one `ConverseResponse`) and
 *   `…/converse-stream` (six events in AWS event-stream binary framing).
 *
 * The three new protocols' bodies are real recordings (`providerBodies.ts`).
 * It parses nothing but the path and the `"stream":true` marker, so what a
 * client costs is the client's own, undiluted by a simulator.
 *
 * The Bedrock SDK speaks HTTP/2 with prior knowledge (h2c) to an `http://`
 * endpoint, the others HTTP/1.1: the port reads each new connection's first
 * bytes and hands it to the HTTP/1.1 or the h2c server (once per connection,
 * so nothing per request).
 *
 * `GET /stats` answers this process's CPU time (µs) and request count, so the
 * bench can say what each client made the upstream spend per request.
 *
 * Usage: `node scripts/bench/upstream.ts [--port 0]`; prints
 * `listening on http://127.0.0.1:<port>` and exits with its parent.
 */
import * as Http from "node:http"
import * as Http2 from "node:http2"
import * as Net from "node:net"
import * as bodies from "./bodies.ts"
import * as providers from "./providerBodies.ts"

const portAt = process.argv.indexOf("--port")
const port = portAt === -1 ? 0 : Number(process.argv[portAt + 1] ?? 0)

interface Answer {
  readonly body: Buffer
  readonly headers: Record<string, string>
}
const json = (text: string): Answer => {
  const body = Buffer.from(text)
  return { body, headers: { "content-type": "application/json", "content-length": String(body.length) } }
}
const sse = (text: string): Answer => {
  const body = Buffer.from(text)
  return {
    body,
    headers: { "content-type": "text/event-stream", "cache-control": "no-cache", "content-length": String(body.length) }
  }
}
const openaiWhole = json(bodies.completion)
const openaiStream = sse(bodies.sse)
const anthropicWhole = json(providers.anthropicMessage)
const anthropicStream = sse(providers.anthropicSse)
const googleWhole = json(providers.googleResponse)
const googleStream = sse(providers.googleSse)
const bedrockWhole = json(providers.bedrockConverse)
const bedrockStream: Answer = {
  body: providers.bedrockStream,
  headers: { "content-type": "application/vnd.amazon.eventstream", "content-length": String(providers.bedrockStream.length) }
}
const marker = Buffer.from(bodies.streamMarker)

/** The fixed answer for a POST to `url` with `body`, or `undefined` (404). */
const answerFor = (url: string, body: Buffer): Answer | undefined => {
  if (url.endsWith("/chat/completions")) return body.includes(marker) ? openaiStream : openaiWhole
  if (url.endsWith("/v1/messages")) return body.includes(marker) ? anthropicStream : anthropicWhole
  if (url.includes(":streamGenerateContent")) return googleStream
  if (url.includes(":generateContent")) return googleWhole
  if (url.endsWith("/converse-stream")) return bedrockStream
  if (url.endsWith("/converse")) return bedrockWhole
  return undefined
}

/** What the handler uses of an HTTP/1.1 or HTTP/2 (compatibility API) response. */
interface Response {
  writeHead(status: number, headers: Record<string, string>): unknown
  end(body: string | Buffer): unknown
}

let requests = 0
let connections = 0
const handler = (req: Http.IncomingMessage | Http2.Http2ServerRequest, res: Response) => {
  if (req.method === "GET" && req.url === "/stats") {
    const cpu = process.cpuUsage()
    res.writeHead(200, { "content-type": "application/json" })
    res.end(JSON.stringify({ cpuUs: cpu.user + cpu.system, requests, connections }))
    return
  }
  const parts: Array<Buffer> = []
  req.on("data", (data: Buffer) => parts.push(data))
  req.on("end", () => {
    requests++
    const answer = req.method === "POST" && req.url !== undefined
      ? answerFor(req.url, parts.length === 1 ? parts[0]! : Buffer.concat(parts))
      : undefined
    if (answer === undefined) {
      res.writeHead(404, { "content-type": "application/json" })
      res.end(`{"error":{"message":"not found","type":"invalid_request_error"}}`)
      return
    }
    res.writeHead(200, answer.headers)
    res.end(answer.body)
  })
}

const h1 = Http.createServer({ keepAlive: true, keepAliveTimeout: 60_000 }, handler)
h1.keepAliveTimeout = 60_000
h1.headersTimeout = 61_000
const h2 = Http2.createServer({}, handler)
const server = Net.createServer((socket) => {
  connections++
  socket.once("data", (first: Buffer) => {
    socket.pause()
    socket.unshift(first)
    // "PRI * HTTP/2.0": the h2c connection preface.
    const h2c = first.length >= 3 && first[0] === 0x50 && first[1] === 0x52 && first[2] === 0x49
    ;(h2c ? h2 : h1).emit("connection", socket)
    process.nextTick(() => socket.resume())
  })
})
server.listen(port, "127.0.0.1", () => {
  const address = server.address()
  if (address !== null && typeof address === "object") console.log(`listening on http://127.0.0.1:${address.port}`)
})
// Exits with its parent: stdin closes when the parent goes.
process.stdin.on("end", () => process.exit(0)).on("error", () => process.exit(0))
process.stdin.resume()
