/**
 * CPU contention as a fault: `n` busy worker processes (each a Node process
 * spinning in a tight loop), started and stopped on demand. A gateway at its
 * CPU limit is an ordinary production state; the chaos run uses these to put
 * the stack there for part of the run.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { Effect, type Scope } from "effect"

/** A set of running hogs. `stop` is idempotent. */
export interface Hogs {
  readonly count: number
  readonly stop: () => void
}

// Every hog this process started and has not stopped yet, killed on exit so none outlives the run.
const live = new Set<ChildProcess>()
let hooked = false
const hookExit = () => {
  if (hooked) return
  hooked = true
  process.on("exit", () => {
    for (const child of live) child.kill("SIGKILL")
  })
}

/** Starts `n` busy processes at once. */
export const startHogs = (n: number): Hogs => {
  hookExit()
  const children: Array<ChildProcess> = []
  for (let i = 0; i < n; i++) {
    // A tight loop that never yields: one core's worth of contention each.
    const child = spawn(process.execPath, ["-e", "for (;;) {}"], { stdio: "ignore" })
    child.on("error", () => {})
    live.add(child)
    children.push(child)
  }
  let stopped = false
  return {
    count: n,
    stop: () => {
      if (stopped) return
      stopped = true
      for (const child of children) {
        child.kill("SIGKILL")
        live.delete(child)
      }
    }
  }
}

/** `n` hogs for the life of the scope. */
export const hogsScoped = (n: number): Effect.Effect<Hogs, never, Scope.Scope> =>
  Effect.acquireRelease(Effect.sync(() => startHogs(n)), (hogs) => Effect.sync(hogs.stop))
