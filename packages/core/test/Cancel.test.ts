import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Fiber } from "effect"
import { Cancel } from "../src/provider/index.ts"

/** A `fetch` that records each init it is given and never answers (the requests stay in flight). */
const recording = () => {
  const inits: Array<RequestInit | undefined> = []
  const fetch: typeof globalThis.fetch = (_input, init) => {
    inits.push(init)
    return new Promise<Response>(() => {})
  }
  return { inits, fetch }
}

describe("Cancel", () => {
  it("a request without a handle reaches fetch unchanged", () => {
    const base = recording()
    const init = { method: "POST", body: "{}" }
    void Cancel.cancellable(base.fetch)("http://127.0.0.1:1/", init)
    assert.strictEqual(base.inits[0], init)
  })

  it("a request with a handle gets a signal that the handle and the SDK's own signal both abort", () => {
    for (const by of ["handle", "sdk"] as const) {
      const base = recording()
      const handle: Cancel.Handle = { cancelled: false, abort: undefined }
      const sdk = new AbortController()
      void Cancel.cancellable(base.fetch)("http://127.0.0.1:1/", { signal: sdk.signal, [Cancel.handleKey]: handle } as RequestInit)
      const signal = base.inits[0]!.signal!
      assert.notStrictEqual(signal, sdk.signal)
      assert.isFalse(signal.aborted)
      if (by === "handle") handle.abort!()
      else sdk.abort(new Error("timed out"))
      assert.isTrue(signal.aborted, by)
      if (by === "sdk") assert.strictEqual((signal.reason as Error).message, "timed out")
    }
  })

  it.effect("interrupting a call aborts its request; interrupted before fetch, the request starts aborted", () =>
    Effect.gen(function*() {
      const base = recording()
      const fetch = Cancel.cancellable(base.fetch)
      const started = yield* Deferred.make<void>()
      const running = yield* Effect.forkChild(Cancel.call((options) => {
        Deferred.doneUnsafe(started, Effect.void)
        return fetch("http://127.0.0.1:1/", options as RequestInit)
      }, String))
      yield* Deferred.await(started)
      yield* Fiber.interrupt(running)
      assert.isTrue(base.inits[0]!.signal!.aborted)

      // The SDK reaches `fetch` only after the call was interrupted (its request building is async).
      let late: (() => void) | undefined
      const waiting = yield* Effect.forkChild(Cancel.call((options) =>
        new Promise<Response>((resolve) => {
          late = () => void fetch("http://127.0.0.1:1/", options as RequestInit).then(resolve)
        }), String))
      yield* Effect.yieldNow
      yield* Fiber.interrupt(waiting)
      late!()
      assert.isTrue(base.inits[1]!.signal!.aborted)
    }))

  it.effect("a call's result and its mapped failure come back as the effect's", () =>
    Effect.gen(function*() {
      assert.strictEqual(yield* Cancel.call(() => Promise.resolve(7), String), 7)
      assert.strictEqual(yield* Effect.flip(Cancel.call(() => Promise.reject(new Error("boom")), (e) => `mapped ${(e as Error).message}`)), "mapped boom")
      assert.strictEqual(yield* Effect.flip(Cancel.call(() => { throw new Error("sync") }, (e) => (e as Error).message)), "sync")
    }))
})
