/**
 * Switchboard core: the `LLM` service, its data and errors, and the
 * combinators that make resilience, limits, money, routing, prompts and
 * structured output composable. Provider authors import from
 * `@switchboard/core/provider`.
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
export * as LlmTest from "./LlmTest.ts"
/** @since 0.1.0 */
export * as SwitchboardConfigError from "./SwitchboardConfigError.ts"
/** @since 0.1.0 */
export * as Deadline from "./Deadline.ts"
/** @since 0.1.0 */
export * as Events from "./Events.ts"
/** @since 0.1.0 */
export * as Retry from "./resilience/Retry.ts"
/** @since 0.1.0 */
export * as CircuitBreaker from "./resilience/CircuitBreaker.ts"
/** @since 0.1.0 */
export * as Fallback from "./resilience/Fallback.ts"
/** @since 0.1.0 */
export * as Hedge from "./resilience/Hedge.ts"
/** @since 0.1.0 */
export * as RateLimit from "./limits/RateLimit.ts"
/** @since 0.1.0 */
export * as Budget from "./limits/Budget.ts"
/** @since 0.1.0 */
export * as ResponseCache from "./cache/ResponseCache.ts"
/** @since 0.1.0 */
export * as Pricing from "./money/Pricing.ts"
/** @since 0.1.0 */
export * as CostLedger from "./money/CostLedger.ts"
/** @since 0.1.0 */
export * as Tokenizer from "./prompt/Tokenizer.ts"
/** @since 0.1.0 */
export * as ProviderError from "./provider/ProviderError.ts"
/** @since 0.1.0 */
export * as BoundedMap from "./state/BoundedMap.ts"
/** @since 0.1.0 */
export * as LanguageModel from "./interop/LanguageModel.ts"
/** @since 0.1.0 */
export * as PromptTemplate from "./prompt/PromptTemplate.ts"
/** @since 0.1.0 */
export * as PromptRegistry from "./prompt/PromptRegistry.ts"
/** @since 0.1.0 */
export * as ContextWindow from "./prompt/ContextWindow.ts"
/** @since 0.1.0 */
export * as Structured from "./prompt/Structured.ts"
/** @since 0.1.0 */
export * as Extract from "./prompt/Extract.ts"
/** @since 0.1.0 */
export * as Router from "./routing/Router.ts"
/** @since 0.1.0 */
export * as HealthMonitor from "./routing/HealthMonitor.ts"
/** @since 0.1.0 */
export * as ModelCatalog from "./routing/ModelCatalog.ts"
/** @since 0.1.0 */
export * as Batch from "./routing/Batch.ts"
/** @since 0.1.0 */
export * as BudgetStore from "./state/BudgetStore.ts"
/** @since 0.1.0 */
export * as BoundedRateLimiterStore from "./state/RateLimiterStore.ts"
/** @since 0.1.0 */
export * as BreakerStore from "./state/BreakerStore.ts"
/** @since 0.1.0 */
export * as Telemetry from "./telemetry/Telemetry.ts"
