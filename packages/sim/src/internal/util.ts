/**
 * Small pure helpers shared by the simulator modules: a fast string hash, a
 * seeded PRNG, duration formatting and a bounded cache. Not exported from the
 * package index.
 *
 * @internal
 */

/** FNV-1a 32-bit hash of a string. */
export const fnv1a = (s: string): number => {
  let h = 0x811c9dc5
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return h >>> 0
}

/** mulberry32: a tiny, fast, seeded PRNG returning floats in [0, 1). */
export const prng = (seed: number): (() => number) => {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Formats milliseconds the way Go's `time.Duration.String` does (`17ms`, `1s`, `1.5s`, `6m0s`). */
export const goDuration = (ms: number): string => {
  const m = Math.max(0, Math.round(ms))
  if (m === 0) return "0s"
  if (m < 1000) return `${m}ms`
  const secs = m / 1000
  if (secs < 60) return `${trim(secs)}s`
  const minutes = Math.floor(secs / 60)
  const rest = secs - minutes * 60
  if (minutes < 60) return `${minutes}m${trim(rest)}s`
  const hours = Math.floor(minutes / 60)
  return `${hours}h${minutes - hours * 60}m${trim(rest)}s`
}

const trim = (n: number): string => String(Math.round(n * 1000) / 1000)

/** RFC 3339 timestamp at whole-second precision, as Anthropic sends its resets. */
export const rfc3339 = (epochMs: number): string => new Date(epochMs).toISOString().replace(/\.\d{3}Z$/, "Z")

/** A Map that forgets everything once it grows past `max` entries (cheap, bounded). */
export class BoundedCache<K, V> {
  readonly max: number
  private map = new Map<K, V>()
  constructor(max: number) {
    this.max = max
  }
  get(key: K): V | undefined {
    return this.map.get(key)
  }
  set(key: K, value: V): void {
    if (this.map.size >= this.max) this.map.clear()
    this.map.set(key, value)
  }
  clear(): void {
    this.map.clear()
  }
}

/** Hex of a 32-bit number padded to 8 characters. */
export const hex8 = (n: number): string => (n >>> 0).toString(16).padStart(8, "0")

/** Deterministic pseudo-random id of the given alphabet and length, from a seed. */
export const idFrom = (seed: number, length: number): string => {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
  const rnd = prng(seed)
  let out = ""
  for (let i = 0; i < length; i++) out += alphabet[Math.floor(rnd() * alphabet.length)]
  return out
}

export const isRecord = (u: unknown): u is Record<string, unknown> =>
  typeof u === "object" && u !== null && !Array.isArray(u)
