/**
 * Load test for `@switchboard/sim`: starts the simulator in a child process
 * (`switchboard-sim --port 0`), then fires non-streaming OpenAI chat requests
 * from this process over keep-alive loopback connections and prints the
 * throughput. Bounded in request count and time; 127.0.0.1 only.
 *
 *   npx -y pnpm@10 exec node scripts/sim-load.ts [--requests 100000] [--seconds 10] [--connections 64] [--stream]
 *
 * @since 0.1.0
 */
import { spawn } from "node:child_process"
import { readFileSync } from "node:fs"
import * as Http from "node:http"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"

const { values } = parseArgs({
  options: {
    requests: { type: "string", default: "100000" },
    seconds: { type: "string", default: "10" },
    connections: { type: "string", default: "64" },
    warmup: { type: "string", default: "2000" },
    stream: { type: "boolean", default: false },
    path: { type: "string", default: "" },
    server: { type: "string", default: "sim" }
  }
})
const maxRequests = Math.min(Number(values.requests), 1_000_000)
const maxMs = Math.min(Number(values.seconds), 60) * 1000
const connections = Math.min(Number(values.connections), 512)
const warmup = Math.min(Number(values.warmup), 50_000)

// `--server effect-baseline` loads the minimal Effect HttpRouter app instead, for comparison.
const bin = fileURLToPath(
  new URL(
    values.server === "effect-baseline" ? "../packages/sim/bench/effect-http-baseline.ts" : "../packages/sim/bin/switchboard-sim.ts",
    import.meta.url
  )
)
const child = spawn(process.execPath, [bin, "--port", "0", "--host", "127.0.0.1"], { stdio: ["ignore", "pipe", "inherit"] })
const stop = () => child.kill("SIGTERM")
process.on("exit", stop)

const url = await new Promise<string>((resolve, reject) => {
  let buf = ""
  const t = setTimeout(() => reject(new Error("sim did not start within 15 s")), 15_000)
  child.stdout.on("data", (d: Buffer) => {
    buf += d.toString()
    const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(buf)
    if (m !== null) {
      clearTimeout(t)
      resolve(m[1]!)
    }
  })
  child.once("exit", (code) => reject(new Error(`sim exited with ${code}`)))
})
const { port } = new URL(url)

const body = JSON.stringify({
  model: "gpt-4o-mini",
  messages: [{ role: "user", content: "Say hello to the load test." }],
  ...(values.stream ? { stream: true, stream_options: { include_usage: true } } : {})
})
const path = values.path !== "" ? values.path : "/openai/v1/chat/completions"
const agent = new Http.Agent({ keepAlive: true, maxSockets: connections })

const one = () =>
  new Promise<number>((resolve, reject) => {
    const req = Http.request(
      {
        host: "127.0.0.1",
        port,
        path,
        method: "POST",
        agent,
        headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body), authorization: "Bearer sk-load" }
      },
      (res) => {
        res.on("data", () => undefined)
        res.on("end", () => resolve(res.statusCode ?? 0))
      }
    )
    req.on("error", reject)
    req.end(body)
  })

const run = async (count: number, ms: number) => {
  let sent = 0
  let ok = 0
  let failed = 0
  const deadline = performance.now() + ms
  const worker = async () => {
    while (sent < count && performance.now() < deadline) {
      sent++
      const status = await one().catch(() => -1)
      if (status === 200) ok++
      else failed++
    }
  }
  const t0 = performance.now()
  await Promise.all(Array.from({ length: connections }, worker))
  const elapsed = (performance.now() - t0) / 1000
  return { ok, failed, elapsed, rps: (ok + failed) / elapsed }
}

/** The server process's CPU seconds (user + system) from /proc, when available (Linux). */
const serverCpu = (): number | undefined => {
  try {
    const stat = readFileSync(`/proc/${child.pid}/stat`, "utf8")
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    return (Number(fields[11]) + Number(fields[12])) / 100
  } catch {
    return undefined
  }
}

await run(warmup, 10_000)
const cpu0 = serverCpu()
const r = await run(maxRequests, maxMs)
const cpu1 = serverCpu()
console.log(
  `sim-load: ${r.ok} ok, ${r.failed} failed in ${r.elapsed.toFixed(2)} s over ${connections} keep-alive connections ` +
    `=> ${Math.round(r.rps)} requests/s (${values.server}, ${values.stream ? "streaming" : "non-streaming"} OpenAI chat completions)`
)
if (cpu0 !== undefined && cpu1 !== undefined) {
  const cpu = cpu1 - cpu0
  console.log(
    `sim-load: server CPU ${cpu.toFixed(2)} s for ${r.ok + r.failed} requests => ${((cpu * 1e6) / (r.ok + r.failed)).toFixed(1)} µs CPU/request, ` +
      `${Math.round((r.ok + r.failed) / cpu)} requests per server-CPU-second`
  )
}
agent.destroy()
stop()
process.exit(r.failed > 0 ? 1 : 0)
