/**
 * A response body read as server-sent events, for a leaf that reads its
 * SDK's stream itself (`.asResponse()`) while the SDK still builds the
 * request and throws its own errors for the response's status.
 *
 * An SDK's own stream reader goes through nested async generators, a
 * `Promise.race` against its abort signal per network read and a line
 * decoder per event: measured over loopback (`scripts/bench`), ~100 µs from
 * the response's headers to the first event with the `openai` SDK, where
 * this reader takes ~15 µs. Each network read is decoded once and parsed by
 * `eventsource-parser` (the WHATWG event-stream rules: `event:` and `data:`
 * fields, multi-line data, comments, CR/LF/CRLF), and its events are handed
 * over one by one. An event the body ends in before its blank line is
 * discarded, as the format says, unless `unterminated: "dispatch"` asks for
 * it.
 *
 * @example
 * ```ts
 * import { ServerSentEvents } from "@switchboard/core/provider"
 *
 * const body = new Response("event: ping\ndata: {\"n\":1}\n\ndata: [DONE]\n\n").body!
 * const names = async () => {
 *   const out: Array<string> = []
 *   for await (const message of ServerSentEvents.messages(body)) out.push(message.event ?? message.data)
 *   return out // ["ping", "[DONE]"]
 * }
 * ```
 *
 * @since 0.2.0
 */
import { createParser, type EventSourceMessage } from "eventsource-parser"

/**
 * One event of the stream: its `event` name (none for the default
 * `message`), `id` and `data` (its `data:` lines joined with `\n`).
 *
 * @since 0.2.0
 * @category models
 */
export type Message = EventSourceMessage

const streaming = { stream: true } as const

/**
 * How {@link messages} reads a body.
 *
 * @since 0.2.0
 * @category models
 */
export interface Options {
  /**
   * What becomes of an event the body ends in before its blank line:
   * `"discard"` (the default, as the event-stream format says, and as the
   * Anthropic SDK reads) or `"dispatch"` (as the OpenAI SDK reads, for
   * servers that leave the last blank line out).
   */
  readonly unterminated?: "discard" | "dispatch" | undefined
}

/**
 * The events of `body`, in order. Ending the iteration early (a `break`, a
 * `return`) cancels the body, which lets a pooled connection serve the next
 * request once the rest of the body has arrived; a read that fails (a socket
 * cut, an abort) rejects with the body's own error.
 *
 * @since 0.2.0
 * @category constructors
 */
export async function* messages(
  body: ReadableStream<Uint8Array>,
  options?: Options
): AsyncGenerator<Message, void, undefined> {
  const dispatchLast = options?.unterminated === "dispatch"
  let ready: Array<Message> = []
  const parser = createParser({ onEvent: (message) => ready.push(message) })
  const decoder = new TextDecoder()
  const reader = body.getReader()
  let ended = false
  try {
    while (!ended) {
      const read = await reader.read()
      if (read.done) {
        ended = true
        const rest = decoder.decode()
        // The line ending and blank line the body left out, so its last event is handed over (a body cut
        // inside an event then ends in data its reader can tell is incomplete).
        if (dispatchLast) parser.feed(rest + "\n\n")
        else if (rest !== "") parser.feed(rest)
      } else {
        parser.feed(decoder.decode(read.value, streaming))
      }
      if (ready.length === 0) continue
      const batch = ready
      ready = []
      for (let i = 0; i < batch.length; i++) yield batch[i]!
    }
  } finally {
    if (!ended) reader.cancel().catch(() => undefined)
    reader.releaseLock()
  }
}
