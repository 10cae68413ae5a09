/**
 * `@switchboard/bedrock`: AWS Bedrock Converse / ConverseStream as an `LLM`
 * layer, over `@aws-sdk/client-bedrock-runtime`.
 *
 * @since 0.1.0
 */

/** @since 0.1.0 */
export * as Bedrock from "./Bedrock.ts"
/** @since 0.1.0 */
export { descriptor } from "./Descriptor.ts"
