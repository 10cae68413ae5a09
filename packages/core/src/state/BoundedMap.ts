/**
 * The memory behind every in-process store (breakers, budgets, limiter
 * counters): a map bounded two ways, so one key per tenant never grows
 * memory without bound.
 *
 * - `capacity`: at most this many keys; adding one more evicts the least
 *   recently used.
 * - `idleTtl`: a key not touched for this long is dropped.
 *
 * Keys are kept in last-touch order (a touched key moves to the back), so the
 * idle ones are always at the front: expiry walks the front and stops at the
 * first live key, costing O(expired) per call, never O(size). Time is passed
 * in by the caller (read from the `Clock`), so `TestClock` drives expiry.
 *
 * @since 0.1.0
 */

/**
 * Bounds of a {@link BoundedMap}.
 *
 * @since 0.1.0
 * @category models
 */
export interface Bounds {
  /** Most keys kept (default 10,000); the least recently used goes first. */
  readonly capacity: number
  /** Milliseconds a key may stay untouched before it is dropped (default: never). */
  readonly idleTtlMs: number
}

/**
 * The default bounds: 10,000 keys, no idle expiry.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultBounds: Bounds = { capacity: 10_000, idleTtlMs: Number.POSITIVE_INFINITY }

interface Entry<V> {
  value: V
  touched: number
}

/**
 * A map bounded by capacity (LRU) and idle time.
 *
 * @example
 * ```ts
 * import { BoundedMap } from "@switchboard/core"
 *
 * const map = BoundedMap.make<number>({ capacity: 2, idleTtlMs: 1000 })
 * map.set("a", 1, 0)
 * map.set("b", 2, 0)
 * map.set("c", 3, 0) // evicts "a"
 * map.get("b", 2000) // undefined: idle for 2 s
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface BoundedMap<V> {
  /** The value for `key`, touching it; `undefined` when absent or idle too long. */
  readonly get: (key: string, now: number) => V | undefined
  /** The value for `key` without touching it (a read that must not keep a key alive); `undefined` when absent or idle too long. */
  readonly peek: (key: string, now: number) => V | undefined
  /** Sets `key`, touching it, and evicts what the bounds require. */
  readonly set: (key: string, value: V, now: number) => void
  readonly delete: (key: string) => void
  /** Keys currently held (after expiring the idle ones at `now`). */
  readonly size: (now: number) => number
  /** Live entries, oldest touch first. */
  readonly entries: (now: number) => IterableIterator<readonly [string, V]>
  readonly bounds: Bounds
}

/**
 * Creates an empty {@link BoundedMap}. `onEvict` is told of each key dropped
 * by a bound (not of explicit deletes).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <V>(
  bounds: Partial<Bounds> = {},
  onEvict?: (key: string, value: V) => void
): BoundedMap<V> => {
  const capacity = bounds.capacity ?? defaultBounds.capacity
  const idleTtlMs = bounds.idleTtlMs ?? defaultBounds.idleTtlMs
  const map = new Map<string, Entry<V>>()
  const expire = (now: number) => {
    if (idleTtlMs === Number.POSITIVE_INFINITY) return
    for (const [key, entry] of map) {
      if (now - entry.touched < idleTtlMs) break
      map.delete(key)
      onEvict?.(key, entry.value)
    }
  }
  const get = (key: string, now: number): V | undefined => {
    const entry = map.get(key)
    if (entry === undefined) return undefined
    if (now - entry.touched >= idleTtlMs) {
      map.delete(key)
      onEvict?.(key, entry.value)
      return undefined
    }
    // Touched already at this instant: it is in order as it stands (a hot key costs one lookup).
    if (entry.touched === now) return entry.value
    // Move to the back: last-touch order keeps idle keys at the front.
    map.delete(key)
    entry.touched = now
    map.set(key, entry)
    return entry.value
  }
  const set = (key: string, value: V, now: number): void => {
    const entry = map.get(key)
    if (entry !== undefined) map.delete(key)
    map.set(key, { value, touched: now })
    expire(now)
    while (map.size > capacity) {
      const oldest = map.keys().next()
      if (oldest.done === true) break
      const evicted = map.get(oldest.value)
      map.delete(oldest.value)
      if (evicted !== undefined) onEvict?.(oldest.value, evicted.value)
    }
  }
  function* entries(now: number): IterableIterator<readonly [string, V]> {
    expire(now)
    for (const [key, entry] of map) yield [key, entry.value] as const
  }
  const peek = (key: string, now: number): V | undefined => {
    const entry = map.get(key)
    return entry === undefined || now - entry.touched >= idleTtlMs ? undefined : entry.value
  }
  return {
    get,
    peek,
    set,
    delete: (key) => void map.delete(key),
    size: (now) => {
      expire(now)
      return map.size
    },
    entries,
    bounds: { capacity, idleTtlMs }
  }
}
