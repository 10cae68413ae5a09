/**
 * Switchboard core: the `LLM` service, its data and errors, and the
 * combinators that make resilience, limits and money composable.
 *
 * @since 0.1.0
 */

/** @since 0.1.0 */
export { LLM } from "./LLM.ts"
/** @since 0.1.0 */
export * as Llm from "./LLM.ts"
/** @since 0.1.0 */
export * as LlmRequest from "./LlmRequest.ts"
/** @since 0.1.0 */
export * as LlmResponse from "./LlmResponse.ts"
/** @since 0.1.0 */
export * as LlmError from "./LlmError.ts"
/** @since 0.1.0 */
export * as Deadline from "./Deadline.ts"
/** @since 0.1.0 */
export * as Events from "./Events.ts"
/** @since 0.1.0 */
export * as Pricing from "./Pricing.ts"
/** @since 0.1.0 */
export * as ProviderError from "./ProviderError.ts"
/** @since 0.1.0 */
export * as Retry from "./Retry.ts"
/** @since 0.1.0 */
export * as CircuitBreaker from "./CircuitBreaker.ts"
/** @since 0.1.0 */
export * as Fallback from "./Fallback.ts"
/** @since 0.1.0 */
export * as Hedge from "./Hedge.ts"
/** @since 0.1.0 */
export * as Tokenizer from "./Tokenizer.ts"
/** @since 0.1.0 */
export * as CostLedger from "./CostLedger.ts"
/** @since 0.1.0 */
export * as Budget from "./Budget.ts"
/** @since 0.1.0 */
export * as RateLimit from "./RateLimit.ts"
/** @since 0.1.0 */
export * as ResponseCache from "./ResponseCache.ts"
