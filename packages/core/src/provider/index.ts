/**
 * What provider authors build on: `@switchboard/core/provider`. A provider
 * package maps its SDK's calls, bodies and errors; this machinery gives every
 * leaf the same guarantees.
 *
 * @since 0.1.0
 */

/** @since 0.1.0 */
export * as ProviderError from "./ProviderError.ts"
/** @since 0.1.0 */
export * as Descriptor from "./Descriptor.ts"
/** @since 0.1.0 */
export * as Provider from "./Provider.ts"
/** @since 0.1.0 */
export * as StreamAccumulator from "./StreamAccumulator.ts"
/** @since 0.1.0 */
export * as Decode from "./Decode.ts"
/** @since 0.1.0 */
export * as Cancel from "./Cancel.ts"
/** @since 0.2.0 */
export * as UndiciFetch from "./UndiciFetch.ts"
/** @since 0.2.0 */
export * as ServerSentEvents from "./ServerSentEvents.ts"
