/**
 * `@switchboard/openai`: OpenAI and every OpenAI-compatible API (Groq,
 * DeepSeek, OpenRouter, Together, Ollama, vLLM, …) as Switchboard `LLM`
 * layers, over the official `openai` SDK.
 *
 * @since 0.1.0
 */

/**
 * Client layers (`layerClient`, `layerClientConfig`, `compatible`), model
 * layers (`model`) and `listModels`.
 *
 * @since 0.1.0
 */
export * as OpenAI from "./OpenAI.ts"
/** @since 0.1.0 */
export { descriptor } from "./Descriptor.ts"
