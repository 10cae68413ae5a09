/**
 * Fault plans at run time: scripted sequences, a seeded random error mix and
 * outage windows per provider and per model, plus the `x-sim-fault` request
 * header syntax.
 *
 * Header syntax: `;`-separated `key=value` items, e.g.
 * `status=429;retry-after=2`, `status=500`, `cut-after=3`, `stall-ms=5000`,
 * `malformed`, `content-filter`, `stream-error=2`, `truncate=1`,
 * `stall-mid-ms=300;stall-after=2`, `retry-after-ms=1500`, `message=...`,
 * `replay=openai/chat-text.json`.
 *
 * @since 0.1.0
 */
import type { Fault, FaultPlan, ModelFaultPlan, ScriptStep } from "./Config.ts"
import { prng } from "./internal/util.ts"

interface Track {
  readonly script: Array<ScriptStep>
  index: number
  used: number
  readonly mix: Array<{ readonly rate: number; readonly fault: Fault }>
  readonly outages: Array<{ readonly from: number; readonly to: number; readonly fault: Fault }>
  rnd: () => number
}

/**
 * The live fault state of one provider (mutable; owned by the server).
 *
 * @since 0.1.0
 * @category models
 */
export interface FaultState {
  plan: FaultPlan
  readonly provider: Track
  readonly models: Map<string, Track>
}

const emptyTrack = (seed: number): Track => ({ script: [], index: 0, used: 0, mix: [], outages: [], rnd: prng(seed) })

const stripPlanKeys = <A extends Record<string, unknown>>(entry: A, keys: ReadonlyArray<string>): Fault => {
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(entry)) if (!keys.includes(k) && v !== undefined) out[k] = v
  return out as Fault
}

const fill = (track: Track, plan: ModelFaultPlan, now: number): void => {
  if (plan.seed !== undefined) track.rnd = prng(plan.seed)
  for (const s of plan.script ?? []) track.script.push(s)
  for (const m of plan.mix ?? []) track.mix.push({ rate: m.rate, fault: stripPlanKeys(m, ["rate"]) })
  for (const o of plan.outages ?? []) {
    const from = now + (o.startMs ?? 0)
    const fault = stripPlanKeys(o, ["startMs", "durationMs"])
    track.outages.push({ from, to: from + o.durationMs, fault: Object.keys(fault).length === 0 ? { status: 503 } : fault })
  }
}

/**
 * Builds the state for a plan set at `now`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeState = (plan: FaultPlan | undefined, now: number): FaultState => {
  const state: FaultState = { plan: plan ?? {}, provider: emptyTrack(plan?.seed ?? 1), models: new Map() }
  if (plan !== undefined) addPlan(state, plan, now, false)
  return state
}

/**
 * Adds a plan to a state (appends scripts, mix entries and outages); the
 * control API's `?mode=add`.
 *
 * @since 0.1.0
 * @category combinators
 */
export const addPlan = (state: FaultState, plan: FaultPlan, now: number, merge = true): void => {
  fill(state.provider, plan, now)
  for (const [model, p] of Object.entries(plan.models ?? {})) {
    let track = state.models.get(model)
    if (track === undefined) {
      track = emptyTrack(p.seed ?? plan.seed ?? 1)
      state.models.set(model, track)
    }
    fill(track, p, now)
  }
  if (merge) {
    const prev = state.plan
    const models: Record<string, ModelFaultPlan> = { ...prev.models }
    for (const [k, v] of Object.entries(plan.models ?? {})) {
      const old = models[k]
      models[k] = old === undefined ? v : concat(old, v)
    }
    state.plan = { ...concat(prev, plan), ...(Object.keys(models).length > 0 ? { models } : {}) }
  }
}

const concat = (a: ModelFaultPlan, b: ModelFaultPlan): ModelFaultPlan => ({
  ...(b.seed !== undefined ? { seed: b.seed } : a.seed !== undefined ? { seed: a.seed } : {}),
  script: [...(a.script ?? []), ...(b.script ?? [])],
  mix: [...(a.mix ?? []), ...(b.mix ?? [])],
  outages: [...(a.outages ?? []), ...(b.outages ?? [])]
})

/** Consumes one script step; `null` = a step that lets the call through, `undefined` = script exhausted. */
const fromScript = (track: Track): Fault | null | undefined => {
  const step = track.script[track.index]
  if (step === undefined) return undefined
  track.used++
  if (track.used >= (step.times ?? 1)) {
    track.index++
    track.used = 0
  }
  if (step.ok === true) return null
  return stripPlanKeys(step, ["times", "ok"])
}

const fromOutage = (track: Track, now: number): Fault | undefined => {
  for (const o of track.outages) if (now >= o.from && now < o.to) return o.fault
  return undefined
}

const fromMix = (track: Track): Fault | undefined => {
  if (track.mix.length === 0) return undefined
  const r = track.rnd()
  let acc = 0
  for (const m of track.mix) {
    acc += m.rate
    if (r < acc) return m.fault
  }
  return undefined
}

/**
 * Picks the fault for one call to `model` at `now`, if any. Precedence: model
 * script, provider script, outages (model then provider), mix (model then provider).
 *
 * @since 0.1.0
 * @category combinators
 */
export const select = (state: FaultState, model: string, now: number): Fault | undefined => {
  const track = state.models.get(model)
  if (track !== undefined) {
    const s = fromScript(track)
    if (s !== undefined) return s ?? undefined
  }
  const s = fromScript(state.provider)
  if (s !== undefined) return s ?? undefined
  const o = (track !== undefined ? fromOutage(track, now) : undefined) ?? fromOutage(state.provider, now)
  if (o !== undefined) return o
  return (track !== undefined ? fromMix(track) : undefined) ?? fromMix(state.provider)
}

/**
 * Whether a state has anything that could fault a call (fast path check).
 *
 * @since 0.1.0
 * @category combinators
 */
export const isEmpty = (state: FaultState): boolean =>
  state.models.size === 0 && state.provider.script.length === 0 && state.provider.mix.length === 0 &&
  state.provider.outages.length === 0

const num = (key: string, value: string | undefined): number => {
  const n = Number(value)
  if (value === undefined || value === "" || !Number.isFinite(n) || n < 0) {
    throw new Error(`x-sim-fault: "${key}" needs a non-negative number, got ${JSON.stringify(value ?? "")}`)
  }
  return n
}

/**
 * Parses an `x-sim-fault` header value into a {@link Fault}; returns an error
 * message string when the value is invalid.
 *
 * @since 0.1.0
 * @category parsing
 */
export const parseFaultHeader = (value: string): Fault | string => {
  const out: {
    -readonly [K in keyof Fault]: Fault[K]
  } = {}
  try {
    for (const raw of value.split(";")) {
      const item = raw.trim()
      if (item === "") continue
      const eq = item.indexOf("=")
      const key = (eq === -1 ? item : item.slice(0, eq)).trim().toLowerCase()
      const val = eq === -1 ? undefined : item.slice(eq + 1).trim()
      switch (key) {
        case "status": {
          const s = num(key, val)
          if (!Number.isInteger(s) || s < 400 || s > 599) return `x-sim-fault: "status" must be an integer 400..599`
          out.status = s
          break
        }
        case "retry-after":
          out.retryAfter = num(key, val)
          break
        case "retry-after-ms":
          out.retryAfterMs = num(key, val)
          break
        case "message":
          out.message = val ?? ""
          break
        case "stall-ms":
        case "stall":
          out.stallMs = Math.round(num(key, val))
          break
        case "stall-mid-ms":
          out.midStreamStallMs = Math.round(num(key, val))
          break
        case "stall-after":
          out.stallAfter = Math.round(num(key, val))
          break
        case "cut-after":
        case "cut":
          out.cutAfter = val === undefined ? 1 : Math.round(num(key, val))
          break
        case "stream-error":
          out.streamErrorAfter = val === undefined ? 1 : Math.round(num(key, val))
          break
        case "truncate":
        case "truncated":
          out.truncateAfter = val === undefined ? 1 : Math.round(num(key, val))
          break
        case "malformed":
          out.malformed = true
          break
        case "content-filter":
          out.contentFilter = true
          break
        case "replay":
          if (val === undefined || val === "") return `x-sim-fault: "replay" needs a fixture path`
          out.replay = val
          break
        default:
          return `x-sim-fault: unknown item "${key}"`
      }
    }
  } catch (e) {
    return (e as Error).message
  }
  return out
}
