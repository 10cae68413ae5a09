import { assert, describe, it } from "@effect/vitest"
import * as Http from "node:http"
import type { AddressInfo } from "node:net"
import * as Zlib from "node:zlib"
import { SwitchboardConfigError } from "../src/index.ts"
import { UndiciFetch } from "../src/provider/index.ts"

/** A loopback server for one test, counting the connections it accepted; `close` ends it and its connections. */
const serve = async (handler: Http.RequestListener) => {
  const server = Http.createServer(handler)
  let connections = 0
  server.on("connection", () => connections++)
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return {
    url,
    connections: () => connections,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      })
  }
}

const readBody = (request: Http.IncomingMessage): Promise<string> =>
  new Promise((resolve) => {
    let text = ""
    request.setEncoding("utf8")
    request.on("data", (chunk: string) => text += chunk)
    request.on("end", () => resolve(text))
  })

const event = (n: number) => `data: {"n":${n}}\n\n`

/** What a caller sees of a response: everything but the headers that differ per connection. */
const seen = async (response: Response) => {
  const headers: Record<string, string> = {}
  response.headers.forEach((value, name) => {
    if (name !== "date" && name !== "connection" && name !== "keep-alive") headers[name] = value
  })
  return {
    status: response.status,
    ok: response.ok,
    statusText: response.statusText,
    url: response.url,
    redirected: response.redirected,
    headers,
    body: await response.text()
  }
}

/** Replies chosen by path, each as real servers send them (compressed even unasked, redirects, odd statuses). */
const replies: Http.RequestListener = async (request, response) => {
  const body = await readBody(request)
  const echo = JSON.stringify({ method: request.method, body, auth: request.headers["authorization"] ?? null })
  switch (request.url) {
    case "/json":
      response.writeHead(200, { "content-type": "application/json", "x-request-id": "req_1" }).end(echo)
      return
    case "/gzip":
      response.writeHead(200, { "content-type": "application/json", "content-encoding": "gzip" }).end(Zlib.gzipSync(echo))
      return
    case "/br":
      response.writeHead(200, { "content-type": "application/json; charset=utf-8", "content-encoding": "br" })
        .end(Zlib.brotliCompressSync(echo))
      return
    case "/limited":
      response.writeHead(429, { "content-type": "application/json", "retry-after": "2" }).end(`{"error":"slow down"}`)
      return
    case "/broken":
      response.writeHead(500, { "content-type": "text/plain" }).end("upstream exploded")
      return
    case "/empty":
      response.writeHead(204).end()
      return
    case "/moved":
      response.writeHead(307, { location: "/json" }).end()
      return
    case "/loop":
      response.writeHead(307, { location: "/loop" }).end()
      return
    case "/sse":
      response.writeHead(200, { "content-type": "text/event-stream" })
      response.write(event(1))
      response.write(event(2))
      response.end(event(3))
      return
    case "/sse-gzip":
      response.writeHead(200, { "content-type": "text/event-stream", "content-encoding": "gzip" })
        .end(Zlib.gzipSync(event(1) + event(2)))
      return
    case "/odd":
      response.writeHead(600, { "content-type": "application/json" }).end("{}")
      return
    default:
      response.writeHead(404).end()
  }
}

describe("UndiciFetch", () => {
  it("answers every reply as Node's fetch does: status, headers, body, decoding, redirects, odd statuses", async () => {
    const server = await serve(replies)
    const fetch = UndiciFetch.make()
    try {
      const paths = ["/json", "/gzip", "/br", "/limited", "/broken", "/empty", "/moved", "/sse", "/sse-gzip", "/odd"]
      for (const path of paths) {
        for (const headers of [{ authorization: "Bearer k", "content-type": "application/json" }, new Headers({ authorization: "Bearer k" })]) {
          const init = { method: "POST", headers, body: `{"path":"${path}"}` }
          const ours = await seen(await fetch(`${server.url}${path}`, init))
          const node = await seen(await globalThis.fetch(`${server.url}${path}`, init))
          // Node's fetch asks for compression (accept-encoding) and keeps the coding's header; both hand over the decoded body.
          assert.deepStrictEqual(ours, node, path)
        }
      }
    } finally {
      await server.close()
    }
  })

  it("a stream's parts arrive as the server sends them, not when it ends", async () => {
    let release!: () => void
    const released = new Promise<void>((resolve) => release = resolve)
    const server = await serve(async (_request, response) => {
      response.writeHead(200, { "content-type": "text/event-stream" })
      response.write(event(1))
      await released
      response.end(event(2))
    })
    try {
      const response = await UndiciFetch.make()(`${server.url}/`, { method: "POST", body: "{}" })
      const reader = response.body!.getReader()
      const first = await reader.read()
      assert.strictEqual(new TextDecoder().decode(first.value), event(1))
      release()
      const second = await reader.read()
      assert.strictEqual(new TextDecoder().decode(second.value), event(2))
      assert.isTrue((await reader.read()).done)
    } finally {
      await server.close()
    }
  })

  it("a stream its reader cancels at its last event keeps the connection for the next call", async () => {
    const server = await serve((_request, response) => {
      response.writeHead(200, { "content-type": "text/event-stream" })
      response.write(event(1) + "data: [DONE]\n\n")
      // The body's terminator comes a moment after the last event, as over a real network.
      setTimeout(() => response.end(), 20)
    })
    try {
      const fetch = UndiciFetch.make()
      for (let call = 0; call < 2; call++) {
        const reader = (await fetch(`${server.url}/`, { method: "POST", body: "{}" })).body!.getReader()
        assert.include(new TextDecoder().decode((await reader.read()).value), "[DONE]")
        await reader.cancel()
        // Past the terminator: the connection is idle again, unless the cancel dropped it.
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
      assert.strictEqual(server.connections(), 1)
    } finally {
      await server.close()
    }
  })

  it("an abort before the headers rejects with the signal's reason and closes the connection", async () => {
    let closed!: () => void
    const connectionClosed = new Promise<void>((resolve) => closed = resolve)
    let arrived!: () => void
    const requestArrived = new Promise<void>((resolve) => arrived = resolve)
    const server = await serve((request) => {
      request.socket.on("close", () => closed())
      arrived()
    })
    try {
      const controller = new AbortController()
      const pending = UndiciFetch.make()(`${server.url}/`, { method: "POST", body: "{}", signal: controller.signal })
      await requestArrived
      const reason = new Error("caller gave up")
      controller.abort(reason)
      const error = await pending.then(() => undefined, (error: unknown) => error)
      assert.strictEqual(error, reason)
      await connectionClosed
    } finally {
      await server.close()
    }
  })

  it("an abort in a stream fails its reader as fetch's does; a cancelled reader stops the download", async () => {
    for (const how of ["abort", "cancel", "cancel a compressed stream"] as const) {
      let closed!: () => void
      const connectionClosed = new Promise<void>((resolve) => closed = resolve)
      const server = await serve((request, response) => {
        request.socket.on("close", () => closed())
        if (how !== "cancel a compressed stream") {
          response.writeHead(200, { "content-type": "text/event-stream" })
          response.write(event(1))
          return
        }
        response.writeHead(200, { "content-type": "text/event-stream", "content-encoding": "gzip" })
        const gzip = Zlib.createGzip()
        gzip.pipe(response)
        gzip.write(event(1))
        gzip.flush()
      })
      try {
        const controller = new AbortController()
        const response = await UndiciFetch.make()(`${server.url}/`, { method: "POST", body: "{}", signal: controller.signal })
        const reader = response.body!.getReader()
        await reader.read()
        if (how === "abort") {
          controller.abort()
          const error = await reader.read().then(() => undefined, (error: unknown) => error)
          assert.strictEqual((error as Error).name, "AbortError", how)
        } else {
          await reader.cancel()
        }
        await connectionClosed
      } finally {
        await server.close()
      }
    }
  })

  it("a stream cut mid-way fails its reader as Node's fetch's does: TypeError(\"terminated\") with undici's cause", async () => {
    const server = await serve((_request, response) => {
      response.writeHead(200, { "content-type": "text/event-stream" })
      response.write(event(1), () => setTimeout(() => response.socket?.destroy(), 5))
    })
    const failure = async (fetch: typeof globalThis.fetch) => {
      const reader = (await fetch(`${server.url}/`, { method: "POST", body: "{}" })).body!.getReader()
      const first = await reader.read()
      const error = await reader.read().then(() => undefined, (error: unknown) => error as TypeError & { readonly cause?: { readonly code?: string } })
      return { first: new TextDecoder().decode(first.value), name: error?.name, message: error?.message, code: error?.cause?.code }
    }
    try {
      const ours = await failure(UndiciFetch.make())
      assert.deepStrictEqual(ours, { first: event(1), name: "TypeError", message: "terminated", code: "UND_ERR_SOCKET" })
      assert.deepStrictEqual(ours, await failure(globalThis.fetch))
    } finally {
      await server.close()
    }
  })

  it("a refused connection and a redirect loop fail as Node's fetch fails: TypeError(\"fetch failed\") with the cause", async () => {
    const server = await serve(replies)
    const refused = await serve(() => {})
    const refusedUrl = `${refused.url}/`
    await refused.close()
    const failure = (pending: Promise<Response>) =>
      pending.then(() => undefined, (error: unknown) => error as TypeError & { readonly cause?: { readonly code?: string } })
    try {
      const [ours, node] = [await failure(UndiciFetch.make()(refusedUrl)), await failure(globalThis.fetch(refusedUrl))]
      assert.instanceOf(ours, TypeError)
      assert.strictEqual(ours!.message, node!.message)
      assert.strictEqual(ours!.cause?.code, "ECONNREFUSED")
      assert.strictEqual(node!.cause?.code, "ECONNREFUSED")

      const [oursLoop, nodeLoop] = [await failure(UndiciFetch.make()(`${server.url}/loop`)), await failure(globalThis.fetch(`${server.url}/loop`))]
      assert.instanceOf(oursLoop, TypeError)
      assert.strictEqual(oursLoop!.message, nodeLoop!.message)
      assert.match(String(oursLoop!.cause), /redirect/i)
    } finally {
      await server.close()
    }
  })

  it("a body it does not carry itself (a form) goes to Node's fetch unchanged", async () => {
    const server = await serve(async (request, response) => {
      const body = await readBody(request)
      response.writeHead(200, { "content-type": "application/json" })
        .end(JSON.stringify({ type: request.headers["content-type"], body }))
    })
    try {
      const form = new FormData()
      form.append("purpose", "batch")
      const answer = await (await UndiciFetch.make()(`${server.url}/`, { method: "POST", body: form })).json() as {
        readonly type: string
        readonly body: string
      }
      assert.match(answer.type, /^multipart\/form-data; boundary=/)
      assert.include(answer.body, `name="purpose"`)
    } finally {
      await server.close()
    }
  })

  it("with NODE_USE_ENV_PROXY=1 it goes through HTTP_PROXY, as Node's fetch does", async () => {
    // The proxy answers itself: a request that reached it names the target in absolute form.
    const proxy = await serve((request, response) => {
      response.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ via: request.url }))
    })
    const saved = { use: process.env["NODE_USE_ENV_PROXY"], proxy: process.env["HTTP_PROXY"], no: process.env["NO_PROXY"] }
    process.env["NODE_USE_ENV_PROXY"] = "1"
    process.env["HTTP_PROXY"] = proxy.url
    delete process.env["NO_PROXY"]
    try {
      const answer = await (await UndiciFetch.make()("http://models.invalid/v1/chat", { method: "POST", body: "{}" })).json()
      assert.deepStrictEqual(answer, { via: "http://models.invalid/v1/chat" })
    } finally {
      for (const [name, value] of [["NODE_USE_ENV_PROXY", saved.use], ["HTTP_PROXY", saved.proxy], ["NO_PROXY", saved.no]] as const) {
        if (value === undefined) delete process.env[name]
        else process.env[name] = value
      }
      await proxy.close()
    }
  })

  it("a bad option fails when the fetch is made, naming each option", () => {
    const error = (() => {
      try {
        UndiciFetch.make({ connections: 0, keepAliveTimeoutMs: 1.5, maxRedirections: -1 })
      } catch (error) {
        return error
      }
    })()
    assert.isTrue(SwitchboardConfigError.isSwitchboardConfigError(error))
    assert.deepStrictEqual(
      ((error as SwitchboardConfigError.SwitchboardConfigError).issues ?? []).map((issue) => issue.path),
      ["UndiciFetch.connections", "UndiciFetch.keepAliveTimeoutMs", "UndiciFetch.maxRedirections"]
    )
    // The defaults and a zero redirect limit are fine.
    UndiciFetch.make()
    UndiciFetch.make({ connections: 8, keepAliveTimeoutMs: 1, maxRedirections: 0 })
  })
})
