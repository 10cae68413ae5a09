/**
 * Baseline for the throughput decision: the smallest possible Effect
 * `HttpRouter` + `NodeHttpServer` app answering
 * `POST /openai/v1/chat/completions` with a precomputed body (it reads and
 * parses the JSON request and does no other work). `scripts/sim-load.ts
 * --server effect-baseline` loads it the same way as the simulator.
 *
 * @since 0.1.0
 */
import { NodeHttpServer, NodeRuntime } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import { HttpRouter, HttpServer, HttpServerResponse } from "effect/http"
import { createServer } from "node:http"

const body = JSON.stringify({
  id: "chatcmpl-baseline",
  object: "chat.completion",
  created: 0,
  model: "gpt-4o-mini",
  choices: [{ index: 0, message: { role: "assistant", content: "hello world", refusal: null }, finish_reason: "stop" }],
  usage: { prompt_tokens: 10, completion_tokens: 2, total_tokens: 12 }
})

const Route = HttpRouter.add("POST", "/openai/v1/chat/completions", (request) =>
  Effect.map(request.json, () => HttpServerResponse.text(body, { contentType: "application/json" })).pipe(
    Effect.orElseSucceed(() => HttpServerResponse.text("bad", { status: 400 }))
  ))

const Announce = Layer.effectDiscard(
  Effect.gen(function*() {
    const server = yield* HttpServer.HttpServer
    const address = server.address
    if (address._tag !== "UnixPathAddress") process.stdout.write(`listening on http://127.0.0.1:${address.port}\n`)
  })
)

const port = Number(process.argv[process.argv.indexOf("--port") + 1] ?? 0)

Layer.launch(
  Layer.merge(HttpRouter.serve(Route, { disableLogger: true, disableListenLog: true }), Announce).pipe(
    Layer.provide(NodeHttpServer.layer(createServer, { port, host: "127.0.0.1" }))
  )
).pipe(NodeRuntime.runMain)
