/**
 * Cancelling an SDK call without handing the SDK an `AbortSignal`.
 *
 * Given a caller's signal, the Stainless-generated SDKs (`openai`,
 * `@anthropic-ai/sdk`) tie it to their own per-request controller with
 * `AbortSignal.any` or with weak references and a finalization registry:
 * 20–30 µs of CPU and garbage per call, measured (`scripts/bench/leaf.ts`),
 * a large share of what a leaf adds to its SDK. Instead, each call carries a
 * plain {@link Handle} in its per-request `fetchOptions`, which those SDKs
 * pass on to `fetch` untouched; the client's `fetch`, wrapped once with
 * {@link cancellable}, gives the real `fetch` one controller of its own that
 * follows the SDK's signal (its timeout, a stream's abort) with a plain
 * listener and the handle's abort. Requests without a handle (the SDK used
 * directly) go through unchanged.
 *
 * @example
 * ```ts
 * import { Cancel } from "@switchboard/core/provider"
 *
 * // Once, where the SDK client is built:
 * const fetch = Cancel.cancellable(globalThis.fetch)
 * // new SomeSdk({ fetch, ... })
 *
 * // Per call: interrupting the effect aborts the request.
 * const call = Cancel.call(
 *   (fetchOptions) => fetch("http://127.0.0.1:1/v1/models", fetchOptions as RequestInit),
 *   (error) => new Error(String(error))
 * )
 * ```
 *
 * @since 0.1.0
 */
import { Effect } from "effect"

/**
 * A call's cancel handle: `cancelled` is set when the call is interrupted
 * before its request starts; `abort` once the request has started.
 *
 * @since 0.1.0
 * @category models
 */
export interface Handle {
  cancelled: boolean
  abort: (() => void) | undefined
}

/**
 * Where a call's {@link Handle} rides in its `fetchOptions`: a symbol, which
 * `fetch` itself ignores.
 *
 * @since 0.1.0
 * @category symbols
 */
export const handleKey: unique symbol = Symbol.for("@switchboard/core/provider/Cancel")

/**
 * The per-request `fetchOptions` that carry a call's {@link Handle} (cast
 * to the SDK's own `fetchOptions` type where it is passed).
 *
 * @since 0.1.0
 * @category models
 */
export interface FetchOptions {
  readonly [handleKey]: Handle
}

/**
 * Wraps a client's `fetch`: a request whose init carries a {@link Handle}
 * gets a controller that both the SDK's own signal and the handle abort;
 * any other request goes through unchanged.
 *
 * @since 0.1.0
 * @category constructors
 */
export const cancellable = (base: typeof globalThis.fetch): typeof globalThis.fetch => (input, init) => {
  const handle = (init as { readonly [handleKey]?: Handle } | undefined)?.[handleKey]
  if (handle === undefined) return base(input, init)
  const controller = new AbortController()
  const follows = init!.signal
  if (follows != null) {
    if (follows.aborted) controller.abort(follows.reason)
    else follows.addEventListener("abort", () => controller.abort(follows.reason), { once: true })
  }
  if (handle.cancelled) controller.abort()
  else handle.abort = () => controller.abort()
  return base(input, { ...init, signal: controller.signal })
}

/**
 * Aborts the request made with `fetchOptions`, its body included, or stops
 * it before it starts: for a call that handed its response body over to be
 * read outside the SDK (a stream), whose reader stops early.
 *
 * @example
 * ```ts
 * import { Cancel } from "@switchboard/core/provider"
 *
 * const fetch = Cancel.cancellable(globalThis.fetch)
 * const call = Cancel.call(
 *   (fetchOptions) =>
 *     fetch("http://127.0.0.1:1/v1/models", fetchOptions as RequestInit).then((response) => ({ response, fetchOptions })),
 *   (error) => new Error(String(error))
 * )
 * // Later, when the body is no longer wanted: Cancel.abort(fetchOptions)
 * ```
 *
 * @since 0.2.0
 * @category combinators
 */
export const abort = (fetchOptions: FetchOptions): void => cancel(fetchOptions[handleKey])

/** Stops the request of `handle` before it starts, or aborts it once it has. */
const cancel = (handle: Handle): void => {
  handle.cancelled = true
  handle.abort?.()
}

/**
 * Runs an SDK call given the {@link FetchOptions} that make it cancellable
 * (through a client whose `fetch` is {@link cancellable}): interrupting the
 * effect aborts the request, or stops it before it starts. `onError` maps
 * what the call rejects with.
 *
 * @since 0.1.0
 * @category constructors
 */
export const call = <A, E>(
  run: (fetchOptions: FetchOptions) => PromiseLike<A>,
  onError: (error: unknown) => E
): Effect.Effect<A, E> =>
  Effect.callback<A, E>((resume) => {
    const handle: Handle = { cancelled: false, abort: undefined }
    try {
      run({ [handleKey]: handle }).then(
        (value) => resume(Effect.succeed(value)),
        (error) => resume(Effect.suspend(() => Effect.fail(onError(error))))
      )
    } catch (error) {
      resume(Effect.suspend(() => Effect.fail(onError(error))))
    }
    return Effect.sync(() => cancel(handle))
  })
