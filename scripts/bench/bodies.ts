/**
 * The fixed OpenAI answers of the benchmark: one `chat.completion` and one
 * SSE stream (two text chunks, a finish chunk, a usage chunk, `[DONE]`),
 * served by the minimal upstream (`upstream.ts`) and by the canned `fetch`
 * of `leaf.ts`.
 */

/** The `chat.completion` body. */
export const completion = JSON.stringify({
  id: "chatcmpl-bench",
  object: "chat.completion",
  created: 1_700_000_000,
  model: "gpt-4o-mini",
  choices: [{
    index: 0,
    message: { role: "assistant", content: "Hello! How can I help you today?", refusal: null },
    logprobs: null,
    finish_reason: "stop"
  }],
  usage: { prompt_tokens: 12, completion_tokens: 9, total_tokens: 21 }
})

const chunk = (delta: object, finish: string | null, usage?: object) =>
  `data: ${
    JSON.stringify({
      id: "chatcmpl-bench",
      object: "chat.completion.chunk",
      created: 1_700_000_000,
      model: "gpt-4o-mini",
      choices: usage === undefined ? [{ index: 0, delta, logprobs: null, finish_reason: finish }] : [],
      ...(usage === undefined ? {} : { usage })
    })
  }\n\n`

/** The SSE stream's text. */
export const sse = chunk({ role: "assistant", content: "Hello!" }, null) +
  chunk({ content: " How can I help you today?" }, null) +
  chunk({}, "stop") +
  chunk({}, null, { prompt_tokens: 12, completion_tokens: 9, total_tokens: 21 }) +
  "data: [DONE]\n\n"

/** The marker of a streaming request in its body. */
export const streamMarker = `"stream":true`

