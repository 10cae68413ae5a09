/**
 * Stream building blocks for the combinators' hot paths, each the cheapest
 * form of a `Stream` operator they would otherwise use on every call.
 *
 * Measured in effect 4.1 on a four-element stream (`scripts/bench/layers.ts
 * --stream` shows the effect on whole combinators): `Stream.suspend` records
 * each stream it makes in a `WeakMap` (~5 µs), where a channel that picks the
 * stream when its run starts gives the same per-run laziness; `Stream.concat`
 * with a suspended tail to fail at the end costs ~19 µs, where mapping the
 * channel's end costs ~3 µs; `Stream.tap` with `Effect.void` per part costs
 * more than a look at each batch inside a layer that is there anyway.
 *
 * Every operator is a channel layer: a setup on the way to the first part
 * and a step on every pull. The combinators' streams are therefore built
 * from a few fused layers ({@link guarded}, {@link recovering},
 * {@link withFiber}) rather than chains of `Stream` operators.
 *
 * @internal
 */
import { type Array as Arr, Cause, Channel, type Context, Effect, Exit, type Fiber, Function, Pull, Scope, Stream } from "effect"

/** Starts `stream` on `scope` inside a channel layer, giving its pull: how each layer here runs the stream it wraps. */
const pullOf = <A, E, R>(
  stream: Stream.Stream<A, E, R>,
  upstream: Pull.Pull<unknown, unknown, unknown>,
  scope: Scope.Scope
): Effect.Effect<Pull.Pull<Arr.NonEmptyReadonlyArray<A>, E, void>, never, R> =>
  Channel.toTransform(Stream.toChannel(stream))(upstream as never, scope)

/**
 * `Stream.suspend` without its `WeakMap`: `make` runs once per run of the
 * stream, so per-run state (counters, flags) stays per run. @internal
 */
export const lazy = <A, E, R>(make: () => Stream.Stream<A, E, R>): Stream.Stream<A, E, R> => withFiber(make)

/**
 * The stream `make` picks for each run, given the running fiber (to read its
 * context): `Stream.unwrap(Effect.withFiber(f => Effect.succeed(make(f))))`
 * without the unwrap's own step on every pull — the picked stream's pull is
 * the run's. @internal
 */
export const withFiber = <A, E, R>(make: (fiber: Fiber.Fiber<unknown, unknown>) => Stream.Stream<A, E, R>): Stream.Stream<A, E, R> =>
  Stream.fromChannel(Channel.fromTransform((upstream: Pull.Pull<unknown, unknown, unknown>, scope: Scope.Scope) =>
    Effect.withFiber((fiber) => pullOf(make(fiber), upstream, scope))
  ))

/**
 * `Stream.unwrap` for an effect that needs no `Scope`: the stream `pick`
 * chooses for each run, whose pull is then the run's — no scope provided
 * around the pick and no step of its own on every pull, as `Stream.unwrap`
 * has. @internal
 */
export const unwrapped = <A, E, R, E2, R2>(
  pick: Effect.Effect<Stream.Stream<A, E, R>, E2, R2>
): Stream.Stream<A, E | E2, R | R2> =>
  Stream.fromChannel(Channel.fromTransform((upstream: Pull.Pull<unknown, unknown, unknown>, scope: Scope.Scope) =>
    Effect.flatMap(pick, (stream) => pullOf(stream, upstream, scope))
  ))

/**
 * `Stream.onExit` for the combinators' hot paths: `finalizer` runs once,
 * with the stream's exit, when it ends, fails, or is dropped or interrupted
 * before its end (then when the scope running it closes, as
 * `Stream.onExit` does). `Stream.onExit` forks a scope per run and closes it
 * (~8 µs on a four-element stream); this watches the pull for its end and
 * puts one finalizer on the run's scope for the early cases. @internal
 */
export const onExit: {
  <E>(finalizer: (exit: Exit.Exit<unknown, E>) => Effect.Effect<void>): <A, R>(self: Stream.Stream<A, E, R>) => Stream.Stream<A, E, R>
  <A, E, R>(self: Stream.Stream<A, E, R>, finalizer: (exit: Exit.Exit<unknown, E>) => Effect.Effect<void>): Stream.Stream<A, E, R>
} = Function.dual(2, <A, E, R>(
  self: Stream.Stream<A, E, R>,
  finalizer: (exit: Exit.Exit<unknown, E>) => Effect.Effect<void>
): Stream.Stream<A, E, R> => guarded(() => ({ open: () => self, close: finalizer })))

/**
 * What {@link guarded} runs for one run of its stream: `open` makes the
 * stream, or an effect making it (it may take a resource first — a
 * reservation, a permit — in the same step when it can), `batch`
 * may rewrite each batch of parts with an effect (or fail the run), `end`
 * checks a clean end (an error fails the run instead), `each` sees every
 * part, and `close` gets the run's exit once.
 *
 * @internal
 */
export interface Guard<A, E, R, E2, R2, I = never, S = never> {
  readonly open: () => Stream.Stream<A, E, R> | Effect.Effect<Stream.Stream<A, E, R>, E2, R2>
  /** A service the opened stream runs with (its setup and every pull). */
  readonly service?: { readonly key: Context.Key<I, S>; readonly value: S } | undefined
  readonly batch?: ((parts: Arr.NonEmptyReadonlyArray<A>) => Effect.Effect<Arr.NonEmptyReadonlyArray<A>, E2>) | undefined
  readonly end?: (() => E2 | undefined) | undefined
  readonly each?: ((part: A) => void) | undefined
  readonly close: (exit: Exit.Exit<unknown, E | E2>) => Effect.Effect<void>
}

/**
 * {@link lazy}, `Stream.unwrap`, `Stream.provideService`,
 * `Stream.mapArrayEffect`, a check at the end and {@link onExit} (with a look
 * at each part) in one channel layer: per run, `setup` (given the running
 * fiber, to read its context) makes a {@link Guard}; its `close` is
 * put on the run's scope before `open` runs, in the same step
 * ({@link addFinalizerNow}), so a resource `open` takes is released whatever
 * happens next (a failure, an interruption, the caller dropping the
 * stream), and an `open` that returns the stream itself starts it there too. Separately they cost a channel layer each on every
 * run and every pull. @internal
 */
export const guarded = <A, E, R, E2 = never, R2 = never, I = never, S = never>(
  setup: (fiber: Fiber.Fiber<unknown, unknown>) => Guard<A, E, R, E2, R2, I, S>
): Stream.Stream<A, E | E2, Exclude<R, I> | R2> =>
  Stream.fromChannel(Channel.fromTransform((upstream: Pull.Pull<unknown, unknown, unknown>, scope: Scope.Scope) =>
    Effect.withFiber((fiber) => {
      const guard = setup(fiber)
      let ended = false
      // The run's exit, once: from the scope (which types it loosely) or from the watched pull.
      const end = (exit: Exit.Exit<unknown, unknown>): Effect.Effect<void> => {
        if (ended) return Effect.void
        ended = true
        return guard.close(exit as Exit.Exit<unknown, E | E2>)
      }
      const start = (stream: Stream.Stream<A, E, R>) => {
        const { service } = guard
        const opened = pullOf(stream, upstream, scope)
        return Effect.map(
          service === undefined ? opened : Effect.provideService(opened, service.key, service.value),
          (pull) => {
            let out: Pull.Pull<Arr.NonEmptyReadonlyArray<A>, E | E2, unknown, R> = service === undefined
              ? pull
              : Effect.provideService(pull, service.key, service.value)
            const { batch, each } = guard
            if (batch !== undefined) out = Effect.flatMap(out, batch)
            const check = guard.end
            if (check !== undefined) {
              out = Effect.catchCause(out, (cause) => {
                if (!Pull.isDoneCause(cause)) return Effect.failCause(cause)
                const error = check()
                return error === undefined ? Effect.failCause(cause) : Effect.fail(error)
              })
            }
            const watched = Effect.onError(
              out,
              (cause) => end(Pull.isDoneCause(cause) ? Exit.void : Exit.failCause(cause as Cause.Cause<E | E2>))
            )
            if (each === undefined) return watched
            return Effect.map(watched, (parts) => {
              for (let i = 0; i < parts.length; i++) each(parts[i]!)
              return parts
            })
          }
        )
      }
      const opening = () => {
        const opened = guard.open()
        return Effect.isEffect(opened) ? Effect.flatMap(opened, start) : start(opened)
      }
      // A run whose scope has closed already is over: its close has run, so nothing is opened (or taken) after it.
      if (!finalizersNow) {
        return Effect.andThen(Scope.addFinalizerExit(scope, end), Effect.suspend(() => ended ? Effect.interrupt : opening()))
      }
      const closed = addFinalizerNow(scope, end)
      return closed === undefined ? opening() : Effect.andThen(closed, Effect.interrupt)
    })
  )) as Stream.Stream<A, E | E2, Exclude<R, I> | R2>

/**
 * Puts `finalizer` on `scope` in this step, as Effect's own `Scope.forkUnsafe`
 * puts a child scope there: `Scope.addFinalizerExit` is an effect of its
 * own (two run-loop steps and a continuation), on the way to every stream
 * layer's first part. It writes the scope's `state` (`Scope.State`, public
 * and mutable in effect 4.1) as that effect does. On a closed scope it adds
 * nothing and gives the finalizer's effect, to run now; else `undefined`.
 * Used only when {@link finalizersNow}. @internal
 */
export const addFinalizerNow = (
  scope: Scope.Scope,
  finalizer: (exit: Exit.Exit<unknown, unknown>) => Effect.Effect<unknown>
): Effect.Effect<unknown> | undefined => {
  const state = scope.state
  if (state._tag === "Closed") return finalizer(state.exit)
  const key = {}
  if (state._tag === "Empty") {
    scope.state = { _tag: "Open", finalizerKey: key, finalizer, finalizers: undefined }
  } else if (state.finalizer !== undefined) {
    state.finalizers = new Map([[state.finalizerKey!, state.finalizer], [key, finalizer]])
    state.finalizerKey = undefined
    state.finalizer = undefined
  } else {
    state.finalizers!.set(key, finalizer)
  }
  return undefined
}

/**
 * Whether {@link addFinalizerNow} works on the `effect` this runs with,
 * checked once on load: two finalizers put on a scope that both run, with
 * its exit, when it closes. On a version of Effect that keeps a scope's
 * finalizers some other way, {@link guarded} registers with
 * `Scope.addFinalizerExit` instead. @internal
 */
export const finalizersNow: boolean = (() => {
  const scope = Scope.makeUnsafe()
  const ran: Array<unknown> = []
  const record = (exit: Exit.Exit<unknown, unknown>) => Effect.sync(() => ran.push(exit))
  if (addFinalizerNow(scope, record) !== undefined || addFinalizerNow(scope, record) !== undefined) return false
  Effect.runSync(Scope.close(scope, Exit.void))
  return ran.length === 2 && ran.every((exit) => exit === Exit.void) && scope.state._tag === "Closed"
})()

/**
 * What {@link recovering} runs for one run of its stream: `before` (an
 * effect, such as an event), then `stream`, each part through `map`
 * (`undefined` drops it) and each batch through `batch`; a typed failure of
 * `stream` closes what it opened and the run goes on with `recover`'s stream
 * (unmapped, as it is), given the error and the `Fail` reason that held it
 * (its annotations).
 *
 * @internal
 */
export interface Recovery<A, E, R, B, E2, R2> {
  readonly stream: Stream.Stream<A, E, R>
  readonly before?: Effect.Effect<void> | undefined
  readonly map?: ((part: A) => B | undefined) | undefined
  readonly batch?: ((parts: Arr.NonEmptyReadonlyArray<A | B>) => Effect.Effect<Arr.NonEmptyReadonlyArray<A | B>>) | undefined
  readonly recover: (error: E, reason: Cause.Fail<E>) => Stream.Stream<B, E2, R2>
}

/**
 * `Stream.unwrap` of a sync setup, `Stream.filterMap`, `Stream.mapArrayEffect`
 * and `Stream.catch` in one channel layer: per run, `setup` (given the
 * running fiber, to read its context) makes a {@link Recovery}. A try of a
 * child call (`Retry`, `Fallback`, `Router`, `Hedge`) is all four on every call, and
 * each layer costs its setup on the way to the first part and a step on
 * every pull. As `Stream.catch`: the end and defects pass through, a
 * failure with a defect in it is not recovered (its typed errors become
 * defects), and the failed stream's scope is closed before the recovery's
 * stream starts. @internal
 */
export const recovering = <A, E, R, B, E2, R2>(
  setup: (fiber: Fiber.Fiber<unknown, unknown>) => Recovery<A, E, R, B, E2, R2>
): Stream.Stream<A | B, E2, R | R2> =>
  Stream.fromChannel(Channel.fromTransform((upstream: Pull.Pull<unknown, unknown, unknown>, scope: Scope.Scope) =>
    Effect.withFiber((fiber) => {
      const run = setup(fiber)
      const { batch, before, map } = run
      let inner = Scope.forkUnsafe(scope)
      let opened: Effect.Effect<AnyPull, never, any> = pullOf(run.stream, upstream, inner)
      if (before !== undefined) opened = Effect.andThen(before, opened)
      return Effect.map(opened, (first) => {
        let pull = first
        if (map !== undefined) pull = mapping(pull, map)
        if (batch !== undefined) pull = Effect.flatMap(pull, batch)
        let current: AnyPull = Effect.catchCause(pull, (cause): AnyPull => {
          if (Pull.isDoneCause(cause)) return Effect.failCause(cause)
          const reason = recoverable(cause as Cause.Cause<E>)
          if (reason === undefined) return Effect.failCause(electDefects(cause))
          const failed = inner
          inner = Scope.forkUnsafe(scope)
          return Effect.andThen(
            Scope.close(failed, Exit.failCause(cause)),
            Effect.flatMap(pullOf(run.recover(reason.error, reason), upstream, inner), (next) => {
              current = next
              return next
            })
          )
        })
        return Effect.suspend(() => current)
      })
    })
  )) as Stream.Stream<A | B, E2, R | R2>

/** A pull of any stream, inside {@link recovering} (its types are the stream's, outside). */
type AnyPull = Pull.Pull<Arr.NonEmptyReadonlyArray<any>, any, any, any>

/** The parts of each batch through `map`, dropping `undefined`s; a batch left empty pulls again. */
const mapping = (pull: AnyPull, map: (part: any) => unknown): AnyPull => {
  const next: AnyPull = Effect.flatMap(pull, (batch) => {
    let out: Array<unknown> | undefined
    for (let i = 0; i < batch.length; i++) {
      const part = batch[i]
      const mapped = map(part)
      if (out === undefined) {
        if (mapped === part) continue
        out = batch.slice(0, i)
      }
      if (mapped !== undefined) out.push(mapped)
    }
    if (out === undefined) return Effect.succeed(batch)
    return out.length === 0 ? next : Effect.succeed(out as unknown as Arr.NonEmptyReadonlyArray<unknown>)
  })
  return next
}

/**
 * The `Fail` reason a typed handler recovers from (as `Effect.catch` and
 * `Stream.catch` choose): none when the cause holds a defect, or only
 * interruptions. @internal
 */
export const recoverable = <E>(cause: Cause.Cause<E>): Cause.Fail<E> | undefined =>
  Cause.hasDies(cause) ? undefined : cause.reasons.find(Cause.isFailReason)

/**
 * A cause no typed handler recovers, passed on as `Effect.catch` and
 * `Stream.catch` do: with a defect in it, its typed errors become defects
 * too. @internal
 */
export const electDefects = <E>(cause: Cause.Cause<E>): Cause.Cause<never> =>
  Cause.hasDies(cause) && Cause.hasFails(cause)
    ? Cause.fromReasons(cause.reasons.map((reason) => reason._tag === "Fail" ? Cause.makeDieReason(reason.error) : reason))
    : cause as Cause.Cause<never>
