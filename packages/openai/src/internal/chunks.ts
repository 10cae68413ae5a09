/**
 * A Chat Completions stream read from its response, as the SDK's own
 * `Stream` reads it (its default mode), without the SDK's reader: the JSON
 * chunk of every event up to `[DONE]`; an `error` event, or a chunk that
 * holds an `error`, throws the SDK's `APIError` (no status: in band); a
 * chunk that is not JSON throws the SDK's `SyntaxError`. `fromSdkError` maps
 * each as it maps the SDK's.
 */
import { ServerSentEvents } from "@switchboard/core/provider"
import { APIError, OpenAIError } from "openai"

/** The `error` field of a chunk, which the SDK hands to `APIError` when it is truthy. */
const errorOf = (data: unknown): unknown =>
  typeof data === "object" && data !== null ? (data as { readonly error?: unknown }).error : undefined

const unterminated = { unterminated: "dispatch" } as const

/** The chunks of the stream `response` carries. */
export async function* chunks(response: Response): AsyncGenerator<unknown, void, undefined> {
  if (response.body === null) throw new OpenAIError("Attempted to iterate over a response with no body")
  // As the SDK: a last event without its blank line (some servers leave it out) still counts.
  for await (const message of ServerSentEvents.messages(response.body, unterminated)) {
    if (message.data === "[DONE]") return
    let data: unknown
    try {
      data = JSON.parse(message.data)
    } catch {
      throw new SyntaxError("Error reading response: malformed server-sent event JSON.")
    }
    if (message.event === "error") {
      throw new APIError(undefined, (errorOf(data) ?? data) as object | undefined, undefined, response.headers)
    }
    const error = errorOf(data)
    if (error) throw new APIError(undefined, error as object, undefined, response.headers)
    yield data
  }
}
