/**
 * The demo's report, written for someone who has never seen Switchboard:
 * every column is explained under its table, failures are broken down by
 * error tag (attempts the stack absorbed, and what callers saw), and the
 * budget story says when the soft switch happened and what came after it.
 */
import type { CostLedger } from "@switchboard/core"
import type { Kind, Outcome } from "./workload.ts"

/** What the event log gathered during the run. */
export interface Observed {
  /** Times each provider's chain moved on to the next one. */
  readonly fallbacksFrom: ReadonlyMap<string, number>
  /** Circuit-breaker transitions, by provider. */
  readonly breakerChanges: ReadonlyMap<string, number>
  /** Failed attempts by provider, then by error tag. */
  readonly attemptFailures: ReadonlyMap<string, ReadonlyMap<string, number>>
  readonly cacheHits: number
  /** When the soft limit was crossed (a `performance.now()` time) and the spend then. */
  readonly softSwitch: { readonly at: number; readonly spentUsd: number } | undefined
  /** Each `BudgetExceeded`: what the call needed, what was left. */
  readonly refusals: ReadonlyArray<{ readonly requestedUsd: number; readonly leftUsd: number }>
}

/** What the stack is, from its config. */
export interface Stack {
  /** The model each provider serves. */
  readonly models: ReadonlyMap<string, string>
  readonly budget: {
    readonly limitUsd: number
    readonly window: string
    readonly softAt: number
    readonly route: string
    readonly onSoft: string
    /** The provider of the `onSoft` route's first model. */
    readonly cheapProvider: string
  } | undefined
}

const usd = (n: number) => `$${n.toFixed(4)}`
const percent = (part: number, whole: number) => `${whole > 0 ? Math.round((part / whole) * 100) : 0}%`
const pct = (sorted: ReadonlyArray<number>, p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? 0
const count = <K>(map: Map<K, number>, key: K, by = 1) => map.set(key, (map.get(key) ?? 0) + by)
const tags = (map: ReadonlyMap<string, number>) =>
  [...map].sort((a, b) => b[1] - a[1]).map(([tag, n]) => `${tag} ${n}`).join(", ")

/** A table: columns right-aligned except the first, then the legend of each column. */
const table = (
  header: ReadonlyArray<string>,
  rows: ReadonlyArray<ReadonlyArray<string>>,
  legend: ReadonlyArray<readonly [string, string]>
): Array<string> => {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  const line = (cells: ReadonlyArray<string>) =>
    `  ${cells.map((c, i) => i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)).join("  ")}`
  const key = Math.max(...legend.map(([name]) => name.length))
  return [
    line(header),
    ...rows.map(line),
    "",
    ...legend.map(([name, text]) => `    ${name.padEnd(key)}  ${text}`)
  ]
}

/** The report's lines. */
export const render = (
  outcomes: ReadonlyArray<Outcome>,
  ledger: CostLedger.Snapshot,
  observed: Observed,
  stack: Stack
): ReadonlyArray<string> => {
  const out: Array<string> = []

  out.push("", "Per provider: every attempt, retries and fallbacks included")
  out.push(...table(
    ["provider", "model", "attempts", "ok", "failed", "fell back", "breaker", "tokens in", "tokens out", "cost"],
    Object.entries(ledger.byProvider).sort().map(([provider, t]) => [
      provider,
      stack.models.get(provider) ?? "?",
      String(t.attempts),
      String(t.attempts - t.failures),
      String(t.failures),
      String(observed.fallbacksFrom.get(provider) ?? 0),
      String(observed.breakerChanges.get(provider) ?? 0),
      String(t.inputTokens),
      String(t.outputTokens),
      usd(t.costUsd)
    ]),
    [
      ["attempts", "calls sent to this provider; one request can make several (retries, then the next provider)"],
      ["ok", "attempts that answered"],
      ["failed", "attempts that failed; the stack retried them or moved on (see failed attempts below)"],
      ["fell back", "times a fallback chain gave up on this provider for a request and tried the next one"],
      ["breaker", "circuit-breaker state changes (closed → open → half-open → closed); an open breaker skips the provider"],
      ["tokens", "input and output tokens the provider billed"],
      ["cost", "what those tokens cost at catalog prices, in USD"]
    ]
  ))

  out.push("", "Failed attempts by error tag (absorbed by retries and fallbacks unless a request failed too)")
  const attemptTags = [...observed.attemptFailures].sort()
  if (attemptTags.length === 0) out.push("  none")
  for (const [provider, byTag] of attemptTags) out.push(`  ${provider}: ${tags(byTag)}`)

  const kinds = new Map<Kind, Array<Outcome>>()
  for (const o of outcomes) kinds.set(o.kind, [...(kinds.get(o.kind) ?? []), o])
  out.push("", "Per kind of request: what callers saw")
  out.push(...table(
    ["kind", "requests", "answered", "from cache", "failed", "p50 ms", "p95 ms", "took s"],
    [...kinds].map(([kind, list]) => {
      const latencies = list.map((o) => o.latencyMs).sort((a, b) => a - b)
      const took = Math.max(...list.map((o) => o.startedAt + o.latencyMs)) - Math.min(...list.map((o) => o.startedAt))
      return [
        kind,
        String(list.length),
        String(list.filter((o) => o.ok).length),
        String(list.filter((o) => o.cached).length),
        String(list.filter((o) => !o.ok).length),
        pct(latencies, 0.5).toFixed(0),
        pct(latencies, 0.95).toFixed(0),
        (took / 1000).toFixed(1)
      ]
    }),
    [
      ["requests", "calls the demo made (Llm.generate, or Llm.stream for streams)"],
      ["answered", "calls that got an answer, from a provider or the cache"],
      ["from cache", "answers the response cache gave without calling a provider"],
      ["failed", "calls that ended with a typed LlmError (by tag below)"],
      ["p50/p95 ms", "time to the whole answer for half / 95 % of the calls, waits and retries included"],
      ["took s", "wall time of the phase (its calls run concurrently)"]
    ]
  ))
  const failedTags = new Map<string, number>()
  const failedKinds = new Map<string, Map<string, number>>()
  for (const o of outcomes) {
    if (o.ok) continue
    count(failedTags, o.tag)
    count(failedKinds.get(o.tag) ?? failedKinds.set(o.tag, new Map()).get(o.tag)!, o.kind)
  }
  out.push("", "Failed requests by error tag")
  if (failedTags.size === 0) out.push("  none")
  for (const [tag, n] of [...failedTags].sort((a, b) => b[1] - a[1])) {
    out.push(`  ${tag} ${n} (${tags(failedKinds.get(tag)!)})`)
  }

  const answeredBy = new Map<string, number>()
  for (const o of outcomes) if (o.ok && !o.cached) count(answeredBy, o.provider)
  out.push("", `Answered by: ${tags(answeredBy)}; from cache: ${observed.cacheHits}`)

  const budget = stack.budget
  if (budget !== undefined) {
    const spent = ledger.total.costUsd
    out.push(
      "",
      `Budget: ${usd(budget.limitUsd)} a ${budget.window}; past ${percent(budget.softAt, 1)} of it the route "${budget.route}" sends calls to the route "${budget.onSoft}"`,
      `  spent ${usd(spent)} of ${usd(budget.limitUsd)} (${percent(spent, budget.limitUsd)}), the total of every billed attempt`,
      "  before a call runs, it reserves its worst case: its input tokens and the model's defaults.maxTokens of output,",
      "  priced at its route's dearest model; the reservation is settled to what the provider billed when it ends"
    )
    const soft = observed.softSwitch
    if (soft === undefined) {
      out.push(`  the soft limit (${usd(budget.softAt * budget.limitUsd)}) was not reached`)
    } else {
      const before = outcomes.filter((o) => o.startedAt < soft.at)
      const after = outcomes.filter((o) => o.startedAt >= soft.at && !o.cached)
      const afterBy = new Map<string, number>()
      for (const o of after) if (o.ok) count(afterBy, o.provider)
      const refused = after.filter((o) => o.tag === "BudgetExceeded").length
      const cheap = afterBy.get(budget.cheapProvider) ?? 0
      out.push(
        `  the soft limit was crossed at ${usd(soft.spentUsd)} (${percent(soft.spentUsd, budget.limitUsd)}) after ${before.length} requests`,
        `  after the switch: ${after.length} calls, ${cheap} answered by ${budget.cheapProvider} (the cheap route), ${
          after.filter((o) => o.ok).length - cheap
        } by others, ${refused} refused with BudgetExceeded`
      )
      const first = observed.refusals[0]
      if (first !== undefined) {
        out.push(
          `  a call is refused only when its worst case no longer fits: the first refusal needed ${usd(first.requestedUsd)} with ${
            usd(first.leftUsd)
          } left (${percent(budget.limitUsd - first.leftUsd, budget.limitUsd)} of the budget spent or reserved)`
        )
      } else {
        out.push("  no call was refused: every call's worst case still fit in what was left")
      }
    }
  }
  return out
}
