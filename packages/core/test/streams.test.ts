import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Stream } from "effect"
import * as Streams from "../src/internal/streams.ts"

/** A guard over `source` whose `open` takes one resource between `before` and `after`, logging what happens. */
const logged = <E>(
  source: Stream.Stream<number, E>,
  before: Effect.Effect<void, string> = Effect.void,
  after: Effect.Effect<void> = Effect.void
) => {
  const log: Array<string> = []
  const stream = Streams.guarded(() => {
    let taken = false
    return {
      open: Effect.andThen(
        before,
        Effect.andThen(Effect.sync(() => {
          taken = true
          log.push("take")
        }), Effect.as(after, source))
      ),
      each: (part: number) => void log.push(`part ${part}`),
      close: (exit: Exit.Exit<unknown, E | string>) =>
        Effect.sync(() => void log.push(`${taken ? "release" : "nothing taken"} ${exit._tag}`))
    }
  })
  return { log, stream }
}

describe("Streams.guarded", () => {
  it.effect("a run takes, shows every part, and releases once with its end", () =>
    Effect.gen(function*() {
      const { log, stream } = logged(Stream.make(1, 2))
      assert.deepStrictEqual(yield* Stream.runCollect(stream), [1, 2])
      assert.deepStrictEqual(log, ["take", "part 1", "part 2", "release Success"])
      // Each run is its own: the guard is made afresh.
      yield* Stream.runDrain(stream)
      assert.deepStrictEqual(log.slice(4), ["take", "part 1", "part 2", "release Success"])
    }))

  it.effect("a failure of the stream releases with the failure", () =>
    Effect.gen(function*() {
      const { log, stream } = logged(Stream.concat(Stream.make(1), Stream.fail("cut")))
      const exit = yield* Effect.exit(Stream.runDrain(stream))
      assert.isTrue(Exit.isFailure(exit))
      assert.deepStrictEqual(log, ["take", "part 1", "release Failure"])
    }))

  it.effect("a stream dropped after its first part releases", () =>
    Effect.gen(function*() {
      const { log, stream } = logged(Stream.make(1, 2, 3).pipe(Stream.rechunk(1)))
      assert.deepStrictEqual(yield* Stream.runCollect(Stream.take(stream, 1)), [1])
      assert.strictEqual(log.filter((line) => line.startsWith("release")).length, 1)
    }))

  it.effect("open failing before it takes anything closes with nothing taken", () =>
    Effect.gen(function*() {
      const { log, stream } = logged(Stream.make(1), Effect.fail("refused"))
      assert.deepStrictEqual(yield* Effect.flip(Stream.runDrain(stream)), "refused")
      assert.deepStrictEqual(log, ["nothing taken Failure"])
    }))

  it.effect("interrupted once open has taken its resource, before a part is read, it releases", () =>
    Effect.gen(function*() {
      const { log, stream } = logged(Stream.never)
      const fiber = yield* Effect.forkChild(Stream.runDrain(stream))
      yield* Effect.yieldNow
      assert.deepStrictEqual(log, ["take"])
      yield* Fiber.interrupt(fiber)
      assert.deepStrictEqual(log, ["take", "release Failure"])
    }))

  it.effect("interrupted while open is still running, after it took its resource, it releases", () =>
    Effect.gen(function*() {
      const { log, stream } = logged(Stream.make(1), Effect.void, Effect.never)
      const fiber = yield* Effect.forkChild(Stream.runDrain(stream))
      yield* Effect.yieldNow
      assert.deepStrictEqual(log, ["take"])
      yield* Fiber.interrupt(fiber)
      assert.deepStrictEqual(log, ["take", "release Failure"])
    }))
})
