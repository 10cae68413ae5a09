/**
 * Reading an effect that is already done.
 *
 * @internal
 */
import { Effect, Exit } from "effect"

/**
 * The value of `effect` when it has already succeeded (an `Effect.succeed` is
 * an `Exit`: a tokenizer's count of a loaded encoding, a memory store's
 * answer), else `undefined` — then the caller runs it. @internal
 */
export const readyValue = <A, E, R>(effect: Effect.Effect<A, E, R>): A | undefined => {
  if (!Exit.isExit(effect)) return undefined
  const exit = effect as Exit.Exit<A, E>
  return Exit.isSuccess(exit) ? exit.value : undefined
}
