/**
 * How starved the process is: while calls are in flight, a timer ticks every
 * few milliseconds and records how late it fired. A late timer means the
 * event loop was busy (CPU contention, a blocking task, too much work per
 * turn): during such a stretch, a call that timed out says more about this
 * process than about the provider it was waiting on.
 *
 * Real time (`performance.now`), not the `Clock`: this measures the runtime,
 * which a `TestClock` does not move. Process-wide, and idle (no timer) from
 * the first tick after the last call in flight ended.
 *
 * @internal
 */

const tickMs = 20
// Samples kept: [fired at, late by] pairs, about the last 20 s at one tick per 20 ms.
const capacity = 1024
const firedAt = new Float64Array(capacity)
const lateBy = new Float64Array(capacity)
let head = 0
let size = 0
let inFlight = 0
let timer: ReturnType<typeof setTimeout> | undefined
let expected = 0

const now = (): number => globalThis.performance.now()

const tick = () => {
  const t = now()
  const late = Math.max(0, t - expected)
  firedAt[head] = t
  lateBy[head] = late
  head = (head + 1) % capacity
  if (size < capacity) size++
  schedule()
}

const schedule = () => {
  if (inFlight === 0) {
    timer = undefined
    return
  }
  expected = now() + tickMs
  timer = setTimeout(tick, tickMs)
  // In Node, the ticker must not keep the process alive.
  const handle = timer as { unref?: () => void }
  if (typeof handle.unref === "function") handle.unref()
}

/** A call starts: the ticker runs while any call is in flight. Returns the real time now. */
export const enter = (): number => {
  inFlight++
  if (timer === undefined) schedule()
  return now()
}

/** A call ended. */
// The ticker is not cleared when the last call ends: it stops at its next tick if nothing is in
// flight then. Calls one after another (no overlap) would otherwise set and clear a timer each.
export const exit = (): void => {
  inFlight = Math.max(0, inFlight - 1)
}

/**
 * How long, in ms of real time, the event loop was blocked between `from`
 * (a value of {@link enter}) and now: the sum of the ticks' lateness, each
 * counted only where it overlaps the interval.
 */
export const blockedSince = (from: number): { readonly blockedMs: number; readonly elapsedMs: number } => {
  const t = now()
  let blocked = 0
  for (let i = 0, j = (head - 1 + capacity) % capacity; i < size; i++, j = (j - 1 + capacity) % capacity) {
    const end = firedAt[j]!
    if (end <= from) break
    const start = end - lateBy[j]!
    blocked += end - Math.max(start, from)
  }
  return { blockedMs: blocked, elapsedMs: t - from }
}
