/**
 * One loopback port speaking HTTP/1.1 and HTTP/2 with prior knowledge (h2c):
 * the Bedrock SDK speaks h2c to http:// endpoints, the others HTTP/1.1, so
 * the port sniffs each connection's preface and hands the socket to the
 * right server. Shared by the simulator and the crafted server.
 *
 * @internal
 */
import * as Http from "node:http"
import * as Http2 from "node:http2"
import * as Net from "node:net"

/** A request handler both servers accept. @internal */
export type Handler = (
  req: Http.IncomingMessage | Http2.Http2ServerRequest,
  res: Http.ServerResponse | Http2.Http2ServerResponse
) => void

/** The listening socket, and how to close it with every connection still open. @internal */
export interface Port {
  readonly server: Net.Server
  readonly close: () => Promise<void>
}

/** A port (not yet listening) serving `handler` over HTTP/1.1 and h2c. @internal */
export const make = (handler: Handler, h1Options: Http.ServerOptions = {}): Port => {
  const h1 = Http.createServer(h1Options, handler)
  const h2 = Http2.createServer({}, handler)
  const sessions = new Set<Http2.ServerHttp2Session>()
  h2.on("session", (session) => {
    sessions.add(session)
    session.once("close", () => sessions.delete(session))
  })
  const sockets = new Set<Net.Socket>()
  const server = Net.createServer((socket) => {
    sockets.add(socket)
    socket.once("close", () => sockets.delete(socket))
    socket.once("data", (first: Buffer) => {
      socket.pause()
      socket.unshift(first)
      // "PRI * HTTP/2.0": the h2c connection preface.
      const target = first.length >= 3 && first[0] === 0x50 && first[1] === 0x52 && first[2] === 0x49 ? h2 : h1
      target.emit("connection", socket)
      process.nextTick(() => socket.resume())
    })
  })
  const close = () =>
    new Promise<void>((done) => {
      server.close(() => done())
      h1.closeAllConnections()
      for (const session of sessions) session.destroy()
      for (const socket of sockets) socket.destroy()
    })
  return { server, close }
}
