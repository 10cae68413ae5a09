/**
 * Hot reload: a set of routes that can be swapped for a new one atomically.
 * Each call takes the current generation when it starts and finishes on it,
 * however long it runs; a generation's resources are released once it has
 * been replaced and its last call has finished. A change that fails to load
 * or build leaves the current generation serving.
 *
 * @internal
 */
import { LLM, LlmError } from "@switchboard/core"
import { Effect, Exit, Scope, Stream } from "effect"
import { watch } from "node:fs"

/** One built config: its routes, and the scope holding their resources. */
export interface Generation {
  readonly routes: ReadonlyMap<string, LLM["Service"]>
  readonly scope: Scope.Closeable
  /** Which file content built it (for reports). */
  readonly version: number
}

interface Slot {
  readonly generation: Generation
  inFlight: number
  retired: boolean
}

export interface Reloading {
  /** The route `name` of whatever generation is current when a call starts. */
  readonly route: (name: string) => LLM["Service"]
  readonly names: () => ReadonlyArray<string>
  /** Swaps in `next`; the previous generation closes once its calls finish. */
  readonly swap: (next: Generation) => Effect.Effect<void>
  readonly current: () => Generation
  /** Closes the current generation (on shutdown). */
  readonly close: Effect.Effect<void>
}

export const make = (first: Generation): Reloading => {
  let slot: Slot = { generation: first, inFlight: 0, retired: false }
  const release = (held: Slot): Effect.Effect<void> =>
    Effect.suspend(() => {
      held.inFlight--
      return held.retired && held.inFlight === 0 ? Scope.close(held.generation.scope, Exit.void) : Effect.void
    })
  const acquire = (): Slot => {
    const held = slot
    held.inFlight++
    return held
  }
  const serviceOf = (held: Slot, name: string): LLM["Service"] | undefined => held.generation.routes.get(name)
  // A caller holding a route that a reload removed gets a typed error, not a defect.
  const missing = (name: string) =>
    Effect.fail(
      new LlmError.ModelNotFound({ provider: "switchboard", model: name, detail: "the route was removed by a config reload" })
    )
  const route = (name: string): LLM["Service"] =>
    LLM.of({
      generate: (request) =>
        Effect.suspend(() => {
          const held = acquire()
          const service = serviceOf(held, name)
          const call = service === undefined ? missing(name) : service.generate(request)
          return Effect.ensuring(call, release(held))
        }),
      stream: (request) =>
        Stream.unwrap(Effect.sync(() => {
          const held = acquire()
          const service = serviceOf(held, name)
          const parts = service === undefined ? Stream.fromEffect(missing(name)) : service.stream(request)
          return Stream.ensuring(parts, release(held))
        }))
    })
  return {
    route,
    names: () => [...slot.generation.routes.keys()],
    current: () => slot.generation,
    swap: (next) =>
      Effect.suspend(() => {
        const previous = slot
        slot = { generation: next, inFlight: 0, retired: false }
        previous.retired = true
        return previous.inFlight === 0 ? Scope.close(previous.generation.scope, Exit.void) : Effect.void
      }),
    close: Effect.suspend(() => Scope.close(slot.generation.scope, Exit.void))
  }
}

/**
 * Calls `onChange` (debounced) whenever `file` changes, until the returned
 * effect's scope closes. Editors often replace a file (rename) rather than
 * write it: the watch is re-armed on every event.
 */
export const watchFile = (
  file: string,
  onChange: () => void,
  debounceMs = 100
): Effect.Effect<void, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => {
      let timer: ReturnType<typeof setTimeout> | undefined
      let watcher: ReturnType<typeof watch> | undefined
      let closed = false
      const arm = () => {
        if (closed) return
        try {
          watcher = watch(file, { persistent: false }, () => {
            if (timer !== undefined) clearTimeout(timer)
            timer = setTimeout(() => {
              timer = undefined
              watcher?.close()
              arm()
              onChange()
            }, debounceMs)
          })
        } catch {
          // The file is being replaced: try again shortly.
          timer = setTimeout(arm, debounceMs)
        }
      }
      arm()
      return () => {
        closed = true
        if (timer !== undefined) clearTimeout(timer)
        watcher?.close()
      }
    }),
    (stop) => Effect.sync(stop)
  ).pipe(Effect.asVoid)
