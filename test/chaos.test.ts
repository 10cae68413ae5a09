/**
 * A short chaos run (1,000 requests at concurrency 128) through the demo
 * stack, real SDKs against the simulator injecting faults and outages: every
 * invariant `pnpm chaos` checks must hold.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { runChaos } from "../scripts/chaos/run.ts"

describe("chaos", () => {
  it.live("1,000 requests under faults: nothing lost, no defect, budget and ledger exact and in agreement, no key leaked, success above the floor, recovery after each outage, p99 within the deadline", () =>
    Effect.gen(function*() {
      const report = yield* runChaos({ requests: 1_000, concurrency: 128, seed: 7, deadlineMs: 2_000 })
      for (const invariant of report.invariants) {
        assert.isTrue(invariant.ok, `${invariant.name}: ${invariant.detail}`)
      }
      assert.strictEqual(report.invariants.length, 12)
      assert.isAbove(report.succeeded, 0, "some requests must succeed")
    }), 120_000)
})
