/**
 * Load test for the gateway: the simulator alone vs the gateway in front of
 * it, with `autocannon` on loopback, at c=1 and c=64, JSON and SSE. Prints
 * p50/p99 latency and requests/s for each, and what the gateway adds.
 *
 * `gateway alone` is the gateway with a route that has no upstream (the
 * fixture's `echo` route): what its own HTTP handling costs. `gateway→sim`
 * adds the provider stack (the OpenAI SDK client) and the second hop.
 *
 * The simulator and the gateway (`switchboard serve test/fixtures/gateway-server.ts`)
 * each run in their own child process; autocannon runs here.
 *
 *   node scripts/gateway-load.ts [--seconds 10] [--access-log]
 *
 * @since 0.1.0
 */
import autocannon from "autocannon"
import { type ChildProcess, spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"

const { values } = parseArgs({
  options: {
    seconds: { type: "string", default: "10" },
    "access-log": { type: "boolean", default: false }
  }
})
const seconds = Math.min(Math.max(1, Number(values.seconds)), 60)
const root = fileURLToPath(new URL("..", import.meta.url))
const children: Array<ChildProcess> = []
process.on("exit", () => children.forEach((child) => child.kill("SIGTERM")))

const start = (args: ReadonlyArray<string>, pattern: RegExp, env: Record<string, string> = {}) =>
  new Promise<string>((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: root, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "inherit"] })
    children.push(child)
    let buffer = ""
    let found = false
    const timer = setTimeout(() => reject(new Error(`${args[0]} did not start within 30 s`)), 30_000)
    child.stdout!.on("data", (data: Buffer) => {
      if (found) return
      buffer += data.toString()
      const match = pattern.exec(buffer)
      if (match !== null) {
        found = true
        clearTimeout(timer)
        resolve(match[1]!)
      }
    })
    child.once("exit", (code) => reject(new Error(`${args[0]} exited with ${code}`)))
  })

const simUrl = await start(["packages/sim/bin/switchboard-sim.ts", "--port", "0"], /listening on (http:\/\/127\.0\.0\.1:\d+)/)
const gatewayUrl = await start(
  ["packages/gateway/bin/switchboard.ts", "serve", "test/fixtures/gateway-server.ts", "--port", "0"],
  /"url":"(http:\/\/[^"]+)"/,
  { SWITCHBOARD_SIM_URL: simUrl, SWITCHBOARD_ACCESS_LOG: values["access-log"] ? "1" : "0" }
)

interface Result {
  readonly p50: number
  readonly p99: number
  readonly rps: number
  readonly errors: number
}

const run = async (url: string, model: string, connections: number, stream: boolean): Promise<Result> => {
  const body = JSON.stringify({
    model,
    messages: [{ role: "user", content: "Say hello to the load test." }],
    max_tokens: 32,
    ...(stream ? { stream: true, stream_options: { include_usage: true } } : {})
  })
  const result = await autocannon({
    url,
    method: "POST",
    connections,
    duration: seconds,
    headers: { "content-type": "application/json", authorization: "Bearer sk-e2e-team-a" },
    body
  })
  return {
    p50: result.latency.p50,
    p99: result.latency.p99,
    rps: result.requests.average,
    errors: result.errors + result.non2xx
  }
}

const rows: Array<string> = []
for (const stream of [false, true]) {
  for (const connections of [1, 64]) {
    const direct = await run(`${simUrl}/openai/v1/chat/completions`, "gpt-4o-mini", connections, stream)
    const gateway = await run(`${gatewayUrl}/v1/chat/completions`, "fast", connections, stream)
    const echo = await run(`${gatewayUrl}/v1/chat/completions`, "echo", connections, stream)
    const mode = stream ? "SSE " : "JSON"
    rows.push(
      `${mode} c=${String(connections).padEnd(3)} | sim p50 ${direct.p50} ms p99 ${direct.p99} ms ${direct.rps.toFixed(0)} req/s` +
        ` | gateway→sim p50 ${gateway.p50} ms p99 ${gateway.p99} ms ${gateway.rps.toFixed(0)} req/s` +
        ` | added p50 ${(gateway.p50 - direct.p50).toFixed(1)} ms p99 ${(gateway.p99 - direct.p99).toFixed(1)} ms` +
        ` | gateway alone (no upstream) p50 ${echo.p50} ms p99 ${echo.p99} ms ${echo.rps.toFixed(0)} req/s` +
        ` | errors ${direct.errors}/${gateway.errors}/${echo.errors}`
    )
    process.stdout.write(`${rows.at(-1)}\n`)
  }
}
process.exit(0)
