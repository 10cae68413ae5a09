import { assert, describe, it } from "@effect/vitest"
import { Cause, Channel, Context, Effect, Exit, Fiber, Scope, Stream } from "effect"
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
      open: () =>
        Effect.andThen(
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

  it.effect("an open that takes its resource in its own step releases it when the run is dropped or interrupted", () =>
    Effect.gen(function*() {
      const log: Array<string> = []
      const taking = (source: Stream.Stream<number>) =>
        Streams.guarded(() => {
          let taken = false
          return {
            open: () => {
              taken = true
              log.push("take")
              return source
            },
            close: (exit) => Effect.sync(() => void log.push(`${taken ? "release" : "nothing taken"} ${exit._tag}`))
          }
        })
      assert.deepStrictEqual(yield* Stream.runCollect(Stream.take(taking(Stream.make(1, 2, 3).pipe(Stream.rechunk(1))), 1)), [1])
      assert.deepStrictEqual(log, ["take", "release Success"])
      const fiber = yield* Effect.forkChild(Stream.runDrain(taking(Stream.never)))
      yield* Effect.yieldNow
      yield* Fiber.interrupt(fiber)
      assert.deepStrictEqual(log, ["take", "release Success", "take", "release Failure"])
    }))
})

describe("Streams.guarded on a closed scope", () => {
  it.effect("set up on a run's scope that has closed already, it closes with nothing taken and opens nothing", () =>
    Effect.gen(function*() {
      const { log, stream } = logged(Stream.make(1))
      const scope = Scope.makeUnsafe()
      yield* Scope.close(scope, Exit.void)
      const pull = yield* Channel.toTransform(Stream.toChannel(stream))(Effect.never, scope)
      const exit = yield* Effect.exit(pull)
      assert.isTrue(Exit.isFailure(exit) && Cause.hasInterrupts(exit.cause))
      assert.deepStrictEqual(log, ["nothing taken Success"])
    }))
})

describe("Streams.addFinalizerNow", () => {
  it("works on the effect this package runs with, so guarded streams register in their own step", () => {
    assert.isTrue(Streams.finalizersNow)
  })

  it.effect("a finalizer put on a scope runs once with its exit, in Effect's order among the scope's others", () =>
    Effect.gen(function*() {
      const ran: Array<string> = []
      const scope = Scope.makeUnsafe()
      const now = (name: string) => (exit: Exit.Exit<unknown, unknown>) => Effect.sync(() => void ran.push(`${name} ${exit._tag}`))
      assert.isUndefined(Streams.addFinalizerNow(scope, now("first")))
      yield* Scope.addFinalizerExit(scope, now("effect's"))
      assert.isUndefined(Streams.addFinalizerNow(scope, now("last")))
      yield* Scope.close(scope, Exit.fail("boom"))
      // Sequential scopes close last-in, first-out.
      assert.deepStrictEqual(ran, ["last Failure", "effect's Failure", "first Failure"])
      // One finalizer alone on a scope runs too.
      const single = Scope.makeUnsafe()
      assert.isUndefined(Streams.addFinalizerNow(single, now("alone")))
      yield* Scope.close(single, Exit.void)
      assert.deepStrictEqual(ran.slice(3), ["alone Success"])
    }))

  it.effect("on a closed scope nothing is put, and the finalizer's effect is given to run now", () =>
    Effect.gen(function*() {
      const ran: Array<string> = []
      const scope = Scope.makeUnsafe()
      yield* Scope.close(scope, Exit.void)
      const given = Streams.addFinalizerNow(scope, (exit) => Effect.sync(() => void ran.push(exit._tag)))
      assert.deepStrictEqual(ran, [])
      assert.isDefined(given)
      yield* given!
      assert.deepStrictEqual(ran, ["Success"])
    }))
})

/** A context value the recovering tests read from inside a stream (its setup and its pulls). */
const Label = Context.Reference<string>("test/Label", { defaultValue: () => "none" })

/** A stream of `parts` that logs its open and close on `log` (what a child's resources would be). */
const resource = <E>(log: Array<string>, name: string, parts: Stream.Stream<number, E>) =>
  Stream.unwrap(Effect.acquireRelease(
    Effect.sync(() => void log.push(`open ${name}`)),
    () => Effect.sync(() => void log.push(`close ${name}`))
  ).pipe(Effect.as(parts)))

describe("Streams.guarded's other parts", () => {
  it.effect("the service is in context for the opened stream's setup and every pull", () =>
    Effect.gen(function*() {
      const seen: Array<string> = []
      const look = Effect.map(Label, (label) => void seen.push(label))
      const source = Stream.unwrap(Effect.as(look, Stream.concat(Stream.fromEffect(Effect.as(look, 1)), Stream.fromEffect(Effect.as(look, 2)))))
      const stream = Streams.guarded(() => ({ open: () => source, service: { key: Label, value: "inner" }, close: () => Effect.void }))
      assert.deepStrictEqual(yield* Stream.runCollect(stream), [1, 2])
      assert.deepStrictEqual(seen, ["inner", "inner", "inner"])
    }))

  it.effect("batch rewrites each batch, and end fails a clean end that it finds incomplete", () =>
    Effect.gen(function*() {
      const exits: Array<string> = []
      const over = (source: Stream.Stream<number>) =>
        Streams.guarded(() => {
          let sum = 0
          return {
            open: () => source,
            batch: (parts) => Effect.sync(() => {
              for (const part of parts) sum += part
              return parts.map((part) => part * 2) as unknown as typeof parts
            }),
            end: () => sum >= 3 ? undefined : `only ${sum}`,
            close: (exit) => Effect.sync(() => void exits.push(exit._tag))
          }
        })
      assert.deepStrictEqual(yield* Stream.runCollect(over(Stream.make(1, 2))), [2, 4])
      assert.strictEqual(yield* Effect.flip(Stream.runDrain(over(Stream.make(1)))), "only 1")
      assert.deepStrictEqual(exits, ["Success", "Failure"])
    }))
})

describe("Streams.recovering", () => {
  it.effect("maps each part, dropping undefined, and pulls again past a batch left empty", () =>
    Effect.gen(function*() {
      const stream = Streams.recovering(() => ({
        stream: Stream.make(1, 2, 3, 4, 5).pipe(Stream.rechunk(2)),
        map: (n: number) => n % 2 === 0 ? undefined : n * 10,
        recover: (error: never) => Stream.fail(error)
      }))
      assert.deepStrictEqual(yield* Stream.runCollect(stream), [10, 30, 50])
      // A batch whose parts all map to themselves is handed on as it is.
      const same = Streams.recovering(() => ({ stream: Stream.make(1, 2), map: (n: number) => n, recover: Stream.fail }))
      assert.deepStrictEqual(yield* Stream.runCollect(same), [1, 2])
    }))

  it.effect("a typed failure closes the failed stream before the recovery opens, and the run goes on", () =>
    Effect.gen(function*() {
      const log: Array<string> = []
      let runs = 0
      const stream = Streams.recovering(() => {
        runs++
        return {
          stream: resource(log, "first", Stream.concat(Stream.make(1), Stream.fail("cut"))),
          map: (n: number) => n + 100,
          recover: (error: string) => {
            log.push(`recover ${error}`)
            return resource(log, "second", Stream.make(2))
          }
        }
      })
      // The recovery's parts are not mapped.
      assert.deepStrictEqual(yield* Stream.runCollect(stream), [101, 2])
      assert.deepStrictEqual(log, ["open first", "recover cut", "close first", "open second", "close second"])
      // Per run: the setup runs again.
      yield* Stream.runDrain(stream)
      assert.strictEqual(runs, 2)
    }))

  it.effect("the recovery's own failure ends the run", () =>
    Effect.gen(function*() {
      const stream = Streams.recovering(() => ({
        stream: Stream.fail("first"),
        recover: (error: string) => Stream.fail(`after ${error}`)
      }))
      assert.strictEqual(yield* Effect.flip(Stream.runDrain(stream)), "after first")
    }))

  it.effect("a defect is not recovered; a failure with a defect in it passes on as defects", () =>
    Effect.gen(function*() {
      let recovered = 0
      const over = (source: Stream.Stream<number, string>) =>
        Streams.recovering(() => ({
          stream: source,
          recover: () => {
            recovered++
            return Stream.make(0)
          }
        }))
      const died = yield* Effect.exit(Stream.runDrain(over(Stream.die("boom"))))
      assert.isTrue(Exit.isFailure(died) && Cause.hasDies(died.cause) && !Cause.hasFails(died.cause))
      const both = Stream.failCause(Cause.combine(Cause.fail("typed"), Cause.die("boom")))
      const mixed = yield* Effect.exit(Stream.runDrain(over(both)))
      assert.isTrue(Exit.isFailure(mixed))
      if (Exit.isFailure(mixed)) {
        assert.isFalse(Cause.hasFails(mixed.cause))
        assert.deepStrictEqual(mixed.cause.reasons.map((reason) => reason._tag), ["Die", "Die"])
      }
      assert.strictEqual(recovered, 0)
    }))

  it.effect("the recovery gets the error and the Fail reason that held it, with its annotations", () =>
    Effect.gen(function*() {
      const Note = Context.Service<string>("test/Note")
      const cut = Effect.failCause(Cause.annotate(Cause.fail("cut"), Context.make(Note, "noted")))
      const stream = Streams.recovering(() => ({
        stream: Stream.concat(Stream.make("one"), Stream.fromEffect(cut)),
        recover: (error: string, reason: Cause.Fail<string>) =>
          Stream.make(`${error} ${String(reason.annotations.get(Note.key))}`)
      }))
      assert.deepStrictEqual(yield* Stream.runCollect(stream), ["one", "cut noted"])
    }))

  it.effect("interrupted while the stream runs, the stream's resources are released", () =>
    Effect.gen(function*() {
      const log: Array<string> = []
      const stream = Streams.recovering(() => ({ stream: resource(log, "first", Stream.never), recover: Stream.fail }))
      const fiber = yield* Effect.forkChild(Stream.runDrain(stream))
      yield* Effect.yieldNow
      assert.deepStrictEqual(log, ["open first"])
      yield* Fiber.interrupt(fiber)
      assert.deepStrictEqual(log, ["open first", "close first"])
    }))
})
