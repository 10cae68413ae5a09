/**
 * Starts a real `redis-server` on a free loopback port for a test, and can
 * kill, restart and slow it (`DEBUG SLEEP`) for fault tests.
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"

export interface RedisServer {
  readonly port: number
  readonly url: string
  /** Kills the server (SIGKILL) and waits for it to exit. */
  readonly kill: () => Promise<void>
  /** Starts it again on the same port and waits until it answers. */
  readonly restart: () => Promise<void>
  /** Sends one raw command on a fresh connection (e.g. `DEBUG SLEEP 1`), without waiting for the reply. */
  readonly sendNoWait: (...args: ReadonlyArray<string>) => Promise<void>
  /** Sends one raw command and returns the raw reply text. */
  readonly command: (...args: ReadonlyArray<string>) => Promise<string>
  readonly stop: () => Promise<void>
}

export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = net.createServer()
    server.on("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })

const encode = (args: ReadonlyArray<string>) =>
  `*${args.length}\r\n` + args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join("")

const send = (port: number, args: ReadonlyArray<string>, wait: boolean): Promise<string> =>
  new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1")
    let data = ""
    socket.on("error", reject)
    socket.on("connect", () => {
      socket.write(encode(args))
      if (!wait) {
        // Give the server the bytes, then leave: the command runs without us.
        setTimeout(() => {
          socket.destroy()
          resolve("")
        }, 20)
      }
    })
    socket.on("data", (chunk) => {
      data += chunk.toString()
      if (wait && data.endsWith("\r\n")) {
        socket.destroy()
        resolve(data)
      }
    })
  })

const waitUntilUp = async (port: number): Promise<void> => {
  for (let i = 0; i < 200; i++) {
    try {
      const reply = await send(port, ["PING"], true)
      if (reply.startsWith("+PONG")) return
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 25))
  }
  throw new Error(`redis-server on ${port} did not start`)
}

export const startRedis = async (options: { readonly fsync?: "always" | "everysec" | undefined } = {}): Promise<RedisServer> => {
  const port = await freePort()
  // Append-only with fsync on every write: a killed server restarts with its data, as a budget's Redis must.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sb-redis-"))
  let child: ChildProcess | undefined
  const start = async () => {
    child = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes", "--appendfsync", options.fsync ?? "always", "--dir", dir, "--enable-debug-command", "local"], {
      stdio: "ignore"
    })
    await waitUntilUp(port)
  }
  const kill = async () => {
    const current = child
    child = undefined
    if (current === undefined || current.exitCode !== null) return
    await new Promise<void>((resolve) => {
      current.once("exit", () => resolve())
      current.kill("SIGKILL")
    })
  }
  await start()
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    kill,
    restart: start,
    sendNoWait: async (...args) => {
      await send(port, args, false)
    },
    command: (...args) => send(port, args, true),
    stop: async () => {
      await kill()
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }
}
