/**
 * `@switchboard/anthropic`: Anthropic's Messages API as a Switchboard `LLM`,
 * over the official `@anthropic-ai/sdk`.
 *
 * @since 0.1.0
 */

/** @since 0.1.0 */
export * as Anthropic from "./Anthropic.ts"
/** @since 0.1.0 */
export { descriptor } from "./Descriptor.ts"
