/**
 * `@switchboard/gateway`: the OpenAI- and Anthropic-compatible HTTP server
 * in front of Switchboard routes, and the `switchboard` CLI.
 *
 * @since 0.1.0
 */

/** @since 0.1.0 */
export * as Gateway from "./Gateway.ts"

/** @since 0.1.0 */
export * as Cli from "./Cli.ts"
