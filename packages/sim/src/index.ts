/**
 * `@switchboard/sim`: an HTTP simulator of the OpenAI, Anthropic, Gemini and
 * Bedrock APIs, with deterministic replies, exact usage, rate limits, fault
 * injection and fixture replay.
 *
 * @since 0.1.0
 */

/**
 * Start and embed the simulator (`Sim.layer`, `Sim.start`, `Sim.startPromise`).
 *
 * @since 0.1.0
 */
export * as Sim from "./Sim.ts"

/**
 * Config schemas, `defaultConfig` and file loading.
 *
 * @since 0.1.0
 */
export * as SimConfig from "./Config.ts"

/**
 * Fault plans and the `x-sim-fault` header syntax.
 *
 * @since 0.1.0
 */
export * as Faults from "./Faults.ts"

/**
 * Fixture replay.
 *
 * @since 0.1.0
 */
export * as Replay from "./Replay.ts"

/**
 * Token counting and the reply word list.
 *
 * @since 0.1.0
 */
export * as Tokens from "./Tokens.ts"

/**
 * A crafted loopback server answering whatever a test says (adversarial tests).
 *
 * @since 0.1.0
 */
export * as Crafted from "./Crafted.ts"
