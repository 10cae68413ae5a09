/**
 * What happened when, during a chaos run: event-loop delay, requests started
 * and ended (with their error tags), attempts and their failures per provider,
 * breaker transitions, limiter waits and the fault windows — bucketed per
 * interval so a collapse (or a recovery) can be read off one table.
 */
import { monitorEventLoopDelay } from "node:perf_hooks"

/** A window of the run where a fault was applied (ms since the clock started). */
export interface Window {
  readonly name: string
  readonly from: number
  readonly to: number
}

/** One interval of the run. */
export interface Bucket {
  readonly from: number
  /** Event-loop delay in the interval: the worst sample and the worst p99, in ms. */
  eldMaxMs: number
  eldP99Ms: number
  started: number
  ok: number
  failed: Record<string, number>
  attempts: number
  attemptFailures: Record<string, number>
  opened: Array<string>
  closed: Array<string>
  halfOpen: Array<string>
  limiterWaits: number
  limiterWaitedMs: number
}

/** A recorder; times are ms since `start`. */
export class Timeline {
  readonly windows: Array<Window> = []
  private readonly buckets: Array<Bucket> = []
  private readonly histogram = monitorEventLoopDelay({ resolution: 10 })
  private timer: ReturnType<typeof setInterval> | undefined
  private t0 = 0

  readonly bucketMs: number
  private readonly sampleMs: number
  private readonly now: () => number

  constructor(bucketMs: number, now: () => number) {
    this.bucketMs = bucketMs
    this.sampleMs = Math.max(50, Math.floor(bucketMs / 4))
    this.now = now
  }

  /** Starts the clock and the event-loop delay sampling. */
  start(): void {
    this.t0 = this.now()
    this.histogram.enable()
    this.timer = setInterval(() => this.sample(), this.sampleMs)
    this.timer.unref()
  }

  stop(): void {
    this.sample()
    this.histogram.disable()
    if (this.timer !== undefined) clearInterval(this.timer)
  }

  /** Ms since start. */
  elapsed(): number {
    return this.t0 === 0 ? 0 : this.now() - this.t0
  }

  private lastSample = 0

  private sample(): void {
    const now = this.elapsed()
    // A loop blocked past a whole interval samples late: what it measured (and the gap itself)
    // belongs to every interval since the last sample, not only to the one it lands in.
    const gap = Math.max(0, now - this.lastSample - this.sampleMs)
    const max = Math.max(gap, this.histogram.count > 0 ? this.histogram.max / 1e6 : 0)
    const p99 = this.histogram.count > 0 ? this.histogram.percentile(99) / 1e6 : 0
    for (let t = Math.floor(this.lastSample / this.bucketMs) * this.bucketMs; t <= now; t += this.bucketMs) {
      const b = this.at(t)
      b.eldMaxMs = Math.max(b.eldMaxMs, max)
      b.eldP99Ms = Math.max(b.eldP99Ms, Math.max(p99, gap))
    }
    this.lastSample = now
    this.histogram.reset()
  }

  private at(t: number): Bucket {
    // Before the clock starts (the warm-up), everything lands in a scratch bucket.
    if (this.t0 === 0) return this.scratch
    const i = Math.max(0, Math.floor(t / this.bucketMs))
    while (this.buckets.length <= i) this.buckets.push(this.empty(this.buckets.length * this.bucketMs))
    return this.buckets[i]!
  }

  private readonly scratch: Bucket = this.empty(-1)

  private empty(from: number): Bucket {
    return {
        from,
        eldMaxMs: 0,
        eldP99Ms: 0,
        started: 0,
        ok: 0,
        failed: {},
        attempts: 0,
        attemptFailures: {},
        opened: [],
        closed: [],
        halfOpen: [],
        limiterWaits: 0,
        limiterWaitedMs: 0
      }
  }

  requestStarted(): void {
    this.at(this.elapsed()).started++
  }

  requestEnded(ok: boolean, tag: string): void {
    const b = this.at(this.elapsed())
    if (ok) b.ok++
    else b.failed[tag] = (b.failed[tag] ?? 0) + 1
  }

  attemptStarted(): void {
    this.at(this.elapsed()).attempts++
  }

  attemptFailed(provider: string, error: string): void {
    const b = this.at(this.elapsed())
    const key = `${provider}:${error}`
    b.attemptFailures[key] = (b.attemptFailures[key] ?? 0) + 1
  }

  breaker(provider: string, to: string, reason: string): void {
    const b = this.at(this.elapsed())
    if (to === "open") b.opened.push(`${provider}(${reason})`)
    else if (to === "closed") b.closed.push(provider)
    else b.halfOpen.push(provider)
  }

  limiterWaited(ms: number): void {
    const b = this.at(this.elapsed())
    b.limiterWaits++
    b.limiterWaitedMs += ms
  }

  window(name: string, from: number, to: number): void {
    this.windows.push({ name, from, to })
  }

  /** The worst event-loop delay measured in the interval holding `t` and the one before it. */
  eldMaxAround(t: number): number {
    const i = Math.floor(t / this.bucketMs)
    return Math.max(this.buckets[i]?.eldMaxMs ?? 0, this.buckets[i - 1]?.eldMaxMs ?? 0)
  }

  /** The buckets recorded so far. */
  all(): ReadonlyArray<Bucket> {
    return this.buckets
  }

  /** The table, one line per bucket. */
  render(): Array<string> {
    const top = (record: Record<string, number>, n: number) =>
      Object.entries(record).sort((a, b) => b[1] - a[1]).slice(0, n).map(([k, v]) => `${k} ${v}`).join(", ")
    const lines = ["     t   eld p99/max   start  ok   failed (top tags) | attempts, failures (top) | breakers | waits"]
    for (const b of this.buckets) {
      const failed = Object.values(b.failed).reduce((x, y) => x + y, 0)
      const marks = this.windows.filter((w) => w.from < b.from + this.bucketMs && w.to > b.from).map((w) => w.name)
      const breakers = [
        ...(b.opened.length > 0 ? [`open ${b.opened.length}: ${[...new Set(b.opened)].slice(0, 3).join(" ")}`] : []),
        ...(b.halfOpen.length > 0 ? [`half-open ${b.halfOpen.join(",")}`] : []),
        ...(b.closed.length > 0 ? [`closed ${b.closed.join(",")}`] : [])
      ].join("; ")
      lines.push(
        `${(b.from / 1000).toFixed(1).padStart(6)}s ${b.eldP99Ms.toFixed(0).padStart(5)}/${b.eldMaxMs.toFixed(0).padEnd(5)} ${
          String(b.started).padStart(5)
        } ${String(b.ok).padStart(4)} ${String(failed).padStart(4)} (${top(b.failed, 2)}) | ${b.attempts}, ${top(b.attemptFailures, 3)} | ${breakers} | ${
          b.limiterWaits > 0 ? `${b.limiterWaits} waited ${Math.round(b.limiterWaitedMs)} ms` : ""
        }${marks.length > 0 ? `  [${marks.join(", ")}]` : ""}`
      )
    }
    return lines
  }
}
