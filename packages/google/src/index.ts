/**
 * `@switchboard/google`: Gemini API and Vertex AI as a Switchboard `LLM`,
 * over the official `@google/genai` SDK.
 *
 * @since 0.1.0
 */

/** @since 0.1.0 */
export * as Google from "./Google.ts"
/** @since 0.1.0 */
export { descriptor } from "./Descriptor.ts"
