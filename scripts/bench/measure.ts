/**
 * Measurement for `pnpm bench`: runs a workload of `requests` calls at a
 * fixed concurrency and reports throughput, latency percentiles, CPU time
 * per request (this process only: the simulator runs in its own) and peak
 * RSS.
 */

/** One variant's numbers. */
export interface Measurement {
  readonly variant: string
  readonly concurrency: number
  readonly stream: boolean
  readonly requests: number
  readonly failures: number
  readonly rps: number
  readonly p50Ms: number
  readonly p99Ms: number
  readonly cpuUsPerRequest: number
  readonly peakRssMb: number
  /** Which upstream served it (`minimal` or `sim`), set by `scripts/bench.ts`. */
  readonly upstream?: string | undefined
  /** What the minimal upstream spent per request serving this variant (µs of its CPU). */
  readonly upstreamCpuUsPerRequest?: number | undefined
  /** Connections the minimal upstream accepted from this variant's run (a client that keeps them: about its concurrency). */
  readonly upstreamConnections?: number | undefined
  /** Every interleaved round's measurement, in round order (this one is their median), set by `scripts/bench.ts`. */
  readonly rounds?: ReadonlyArray<Measurement> | undefined
}

/**
 * A call to measure. It resolves when the whole response arrived; a streaming
 * call resolves with its time to first part (ms), which is then the latency
 * recorded.
 */
export type Call = (index: number) => Promise<number | void>

const percentile = (sorted: ReadonlyArray<number>, p: number): number =>
  sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!

/**
 * Runs `warmup` calls, then `requests` calls with `concurrency` workers, and
 * measures them.
 */
export const measure = async (options: {
  readonly variant: string
  readonly concurrency: number
  readonly stream: boolean
  readonly requests: number
  readonly warmup: number
  readonly call: Call
}): Promise<Measurement> => {
  const { call, concurrency } = options
  const runWorkers = async (count: number, latencies: Array<number> | undefined) => {
    let next = 0
    let failures = 0
    const worker = async () => {
      while (next < count) {
        const index = next++
        const start = performance.now()
        let latency: number | void = undefined
        try {
          latency = await call(index)
        } catch {
          failures++
        }
        latencies?.push(typeof latency === "number" ? latency : performance.now() - start)
      }
    }
    await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker))
    return failures
  }
  await runWorkers(options.warmup, undefined)
  globalThis.gc?.()
  const latencies: Array<number> = []
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  const failures = await runWorkers(options.requests, latencies)
  const elapsed = performance.now() - t0
  const cpu = process.cpuUsage(cpu0)
  latencies.sort((a, b) => a - b)
  return {
    variant: options.variant,
    concurrency,
    stream: options.stream,
    requests: options.requests,
    failures,
    rps: options.requests / (elapsed / 1000),
    p50Ms: percentile(latencies, 0.5),
    p99Ms: percentile(latencies, 0.99),
    cpuUsPerRequest: (cpu.user + cpu.system) / options.requests,
    peakRssMb: process.resourceUsage().maxRSS / 1024
  }
}
