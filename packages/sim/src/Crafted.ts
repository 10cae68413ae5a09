/**
 * A crafted loopback server for adversarial tests: a plain `node:http`
 * server (HTTP/1.1, and h2c for the Bedrock SDK) on 127.0.0.1 (a free port) that answers every request with what the
 * test says — any status, headers and body, garbage included — and records
 * what it received. Use it to prove a provider layer over its real SDK never
 * turns a bad body into a success or a defect.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Crafted } from "@switchboard/sim"
 *
 * const program = Effect.gen(function*() {
 *   const server = yield* Crafted.serve(() => ({ status: 200, json: { choices: [] } }))
 *   return server.url // http://127.0.0.1:<port>
 * })
 * ```
 *
 * @since 0.1.0
 */
import type * as Http from "node:http"
import type * as Http2 from "node:http2"
import type { AddressInfo } from "node:net"
import { Effect, type Scope } from "effect"
import * as Port from "./internal/port.ts"

/**
 * What the server answers: a JSON value (`json`), or raw `body` text, with a
 * status (default 200) and headers.
 *
 * @since 0.1.0
 * @category models
 */
export interface Reply {
  readonly status?: number | undefined
  readonly headers?: Readonly<Record<string, string>> | undefined
  readonly json?: unknown
  readonly body?: string | Uint8Array | undefined
}

/**
 * A request the server received.
 *
 * @since 0.1.0
 * @category models
 */
export interface Received {
  readonly method: string
  readonly url: string
  readonly headers: Http.IncomingHttpHeaders | Http2.IncomingHttpHeaders
  readonly body: string
  /** `"1.1"` or `"2.0"` (h2c). */
  readonly httpVersion: string
  /** The client's port: the requests that came over one connection share it. */
  readonly remotePort: number | undefined
}

/**
 * A running crafted server.
 *
 * @since 0.1.0
 * @category models
 */
export interface CraftedServer {
  /** `http://127.0.0.1:<port>` */
  readonly url: string
  readonly port: number
  /** Every request received so far, in order. */
  readonly received: ReadonlyArray<Received>
}

/**
 * Starts a crafted server for the scope; `reply` decides each answer.
 *
 * @since 0.1.0
 * @category constructors
 */
export const serve = (reply: (request: Received) => Reply): Effect.Effect<CraftedServer, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.callback<{ readonly close: () => Promise<void>; readonly crafted: CraftedServer }>((resume) => {
      const received: Array<Received> = []
      const handler: Port.Handler = (req, res) => {
        const chunks: Array<Buffer> = []
        req.on("data", (chunk: Buffer) => chunks.push(chunk))
        req.on("end", () => {
          const request: Received = {
            method: req.method ?? "GET",
            url: req.url ?? "/",
            headers: req.headers,
            body: Buffer.concat(chunks).toString("utf8"),
            httpVersion: req.httpVersion,
            remotePort: req.socket.remotePort
          }
          received.push(request)
          const answer = reply(request)
          const body = answer.json !== undefined ? JSON.stringify(answer.json) : answer.body ?? ""
          const headers = {
            "content-type": answer.json !== undefined ? "application/json" : "text/plain",
            ...answer.headers
          }
          ;(res as Http.ServerResponse).writeHead(answer.status ?? 200, headers)
          res.end(body)
        })
      }
      const { close, server } = Port.make(handler)
      server.listen(0, "127.0.0.1", () => {
        const port = (server.address() as AddressInfo).port
        resume(Effect.succeed({ close, crafted: { url: `http://127.0.0.1:${port}`, port, received } }))
      })
    }),
    ({ close }) => Effect.promise(close)
  ).pipe(Effect.map(({ crafted }) => crafted))
