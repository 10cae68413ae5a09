/**
 * Test helpers: the simulator config the suite runs against, a recording
 * proxy that shows exactly what the SDK put on the wire, and layer builders.
 */
import { LLM, type LlmRequest } from "@switchboard/core"
import { Sim } from "@switchboard/sim"
import { Effect, Layer } from "effect"
import * as Http from "node:http"
import type { AddressInfo } from "node:net"
import { Google } from "../src/index.ts"

/** The key the `gemini-keyed` provider accepts. */
export const goodKey = "AIza-good-key-0001"

const models = [
  { id: "gemini-2.5-flash", contextWindow: 1_048_576, maxOutput: 65_536 },
  { id: "gemini-3-pro-preview", contextWindow: 1_048_576, maxOutput: 65_536 },
  { id: "gemini-tiny", contextWindow: 40, maxOutput: 64 }
]

/** Providers: `gemini` (open), `gemini-keyed` (checks the key), `gemini-slow` (5 s to first token). */
export const simConfig = (fixturesDir?: string) => ({
  ...(fixturesDir !== undefined ? { fixturesDir } : {}),
  providers: {
    gemini: { protocol: "gemini" as const, models },
    "gemini-keyed": { protocol: "gemini" as const, models, apiKeys: [goodKey] },
    "gemini-slow": { protocol: "gemini" as const, models, latency: { ttftMs: 5_000 } }
  }
})

/** One request as the proxy saw it. */
export interface Seen {
  readonly method: string
  readonly path: string
  readonly headers: Http.IncomingHttpHeaders
  readonly body: any
}

/**
 * A loopback proxy in front of `target` that records every request, closed
 * with the test's scope.
 */
export const recorder = (target: string) =>
  Effect.acquireRelease(
    Effect.promise(() =>
      new Promise<{ url: string; seen: Array<Seen>; server: Http.Server }>((resolve) => {
        const seen: Array<Seen> = []
        const server = Http.createServer((req, res) => {
          const chunks: Array<Buffer> = []
          req.on("data", (c: Buffer) => chunks.push(c))
          req.on("end", async () => {
            const text = Buffer.concat(chunks).toString("utf8")
            seen.push({
              method: req.method ?? "GET",
              path: req.url ?? "/",
              headers: req.headers,
              body: text === "" ? undefined : JSON.parse(text)
            })
            const headers: Record<string, string> = {}
            for (const [k, v] of Object.entries(req.headers)) {
              if (typeof v === "string" && k !== "host" && k !== "content-length") headers[k] = v
            }
            try {
              const upstream = await fetch(target + (req.url ?? "/"), {
                method: req.method ?? "GET",
                headers,
                ...(text === "" ? {} : { body: text })
              })
              const out: Record<string, string> = {}
              upstream.headers.forEach((v, k) => {
                if (k !== "content-length" && k !== "transfer-encoding" && k !== "content-encoding") out[k] = v
              })
              res.writeHead(upstream.status, out)
              if (upstream.body !== null) for await (const c of upstream.body) res.write(c)
              res.end()
            } catch {
              res.destroy()
            }
          })
        })
        server.listen(0, "127.0.0.1", () => {
          const { port } = server.address() as AddressInfo
          resolve({ url: `http://127.0.0.1:${port}`, seen, server })
        })
      })
    ),
    ({ server }) =>
      Effect.promise(() =>
        new Promise<void>((done) => {
          server.closeAllConnections()
          server.close(() => done())
        })
      )
  )

/** A client layer on the sim's `provider` (default `gemini`). */
export const client = (
  sim: Sim.SimHandle,
  options: Partial<Google.ClientOptions> & { readonly provider?: string } = {}
) => {
  const { provider, ...rest } = options
  return Google.layerClient({ apiKey: goodKey, baseURL: sim.providerUrl(provider ?? "gemini"), ...rest })
}

/** An `LLM` layer for `model` on the sim, with per-client headers. */
export const llm = (
  sim: Sim.SimHandle,
  options: Partial<Google.ClientOptions> & {
    readonly provider?: string
    readonly model?: string
    readonly contentFilter?: "fail" | "return"
  } = {}
): Layer.Layer<LLM> => {
  const { contentFilter, model, ...rest } = options
  return Google.model(model ?? "gemini-2.5-flash", undefined, { contentFilter }).pipe(Layer.provide(Layer.orDie(client(sim, rest))))
}

/** A fault header for one client. */
export const fault = (value: string) => ({ headers: { "x-sim-fault": value } })

export const user = (text: string): LlmRequest.LlmRequest => ({ messages: [{ role: "user", content: text }] })

export const weather: LlmRequest.Tool = {
  name: "weather",
  description: "Current weather in a city",
  parameters: {
    type: "object",
    properties: { city: { type: "string" }, unit: { type: "string", enum: ["c", "f"] } },
    required: ["city", "unit"]
  }
}
