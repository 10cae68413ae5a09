/**
 * A `switchboard` gateway as a real child process, for the end-to-end tests:
 * starts `switchboard <args>` from the repository root and resolves once the
 * gateway prints its URL (or fails with what it printed if it exits first or
 * takes longer than 20 s).
 */
import { type ChildProcess, spawn } from "node:child_process"
import { fileURLToPath } from "node:url"

const root = fileURLToPath(new URL("..", import.meta.url))
const bin = "packages/gateway/bin/switchboard.ts"

/** A running gateway process. */
export interface GatewayProcess {
  readonly url: string
  readonly child: ChildProcess
  /** Everything it printed so far (stdout and stderr). */
  readonly output: () => string
  readonly exited: Promise<number | null>
}

/** Starts `switchboard <args>` (e.g. `["serve", file, "--port", "0"]`) with `env`. */
export const startGateway = (args: ReadonlyArray<string>, env: NodeJS.ProcessEnv = process.env): Promise<GatewayProcess> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { cwd: root, env, stdio: ["ignore", "pipe", "pipe"] })
    let output = ""
    const exited = new Promise<number | null>((done) => child.once("exit", (code) => done(code)))
    const timer = setTimeout(() => reject(new Error(`gateway did not start:\n${output}`)), 20_000)
    const onData = (data: Buffer) => {
      output += data.toString()
      const match = /"url":"(http:\/\/[^"]+)"/.exec(output)
      if (match !== null) {
        clearTimeout(timer)
        resolve({ url: match[1]!, child, output: () => output, exited })
      }
    }
    child.stdout!.on("data", onData)
    child.stderr!.on("data", onData)
    exited.then((code) => reject(new Error(`gateway exited with ${code}:\n${output}`)))
  })
