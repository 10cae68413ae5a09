/**
 * What the four provider packages' fast-path property tests share: the wire
 * values they generate (mostly valid, now and then a near miss) and the
 * agreement they check — a hand-written fast path never accepts what its
 * Schema refuses, refuses with the same detail, and reads every field the
 * same.
 */
import { assert } from "@effect/vitest"
import { LlmError } from "@switchboard/core"
import fc from "fast-check"

/** A JSON value with sorted keys and `undefined` members dropped (a `BigInt` spelled `12n`), to compare two readings. */
export const canonical = (u: unknown): string =>
  JSON.stringify(u, (_, value: unknown) =>
    typeof value === "object" && value !== null && !Array.isArray(value)
      ? Object.fromEntries(Object.entries(value).sort(([a], [b]) => a.localeCompare(b)))
      : typeof value === "bigint"
      ? `${value}n`
      : value)

/**
 * Field values around what the wire allows: `mostly(valid)` is `valid` twelve
 * times in thirteen and otherwise a near miss (absent, null, the wrong type,
 * out of range, plus `extra`, e.g. the `BigInt` an SDK parses from a huge
 * number), so most generated values are valid but for one field.
 */
export const wire = (extra: ReadonlyArray<unknown> = []) => {
  const anything = fc.constantFrom<unknown>(undefined, null, "", "text", 0, 7, -1, 1.5, 1e308, "12", true, {}, [], ...extra)
  const mostly = <A>(valid: fc.Arbitrary<A>) =>
    fc.oneof({ weight: 12, arbitrary: valid as fc.Arbitrary<unknown> }, { weight: 1, arbitrary: anything })
  return {
    anything,
    mostly,
    /** A short string, or absent, or null. */
    text: mostly(fc.oneof(fc.constantFrom<unknown>(undefined, null), fc.string({ maxLength: 4 }))),
    /** A token count, or absent, or null. */
    count: mostly(fc.oneof(fc.constantFrom<unknown>(undefined, null), fc.nat())),
    /** `arb` one time in `freq + 1`, else absent. */
    rare: <A>(arb: fc.Arbitrary<A>, freq = 5) => fc.option(arb, { nil: undefined, freq })
  }
}

/**
 * Checks, for `runs` values of `values`, that the fast decoder and the
 * Schema-only one agree: both refuse with the same `MalformedResponse`
 * detail, or both accept and `read` finds the same in each.
 */
export const assertAgreement = <D>(
  values: fc.Arbitrary<unknown>,
  decoders: {
    readonly fast: (value: unknown) => D | LlmError.MalformedResponse
    readonly slow: (value: unknown) => D | LlmError.MalformedResponse
    readonly read: (decoded: D) => unknown
  },
  runs = 5_000
): void =>
  fc.assert(
    fc.property(values, (value) => {
      const fast = decoders.fast(value)
      const slow = decoders.slow(value)
      if (slow instanceof LlmError.MalformedResponse) {
        assert.instanceOf(fast, LlmError.MalformedResponse, `the fast path accepted what the Schema refuses: ${slow.detail}`)
        assert.strictEqual((fast as LlmError.MalformedResponse).detail, slow.detail)
        return
      }
      assert.notInstanceOf(fast, LlmError.MalformedResponse, "the fast path refused what the Schema accepts")
      assert.strictEqual(canonical(decoders.read(fast as D)), canonical(decoders.read(slow)))
    }),
    { numRuns: runs }
  )
