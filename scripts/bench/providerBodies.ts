/**
 * The fixed answers of the minimal upstream (`upstream.ts`) for the other
 * three provider protocols, taken from real recordings (the golden fixtures:
 * Anthropic `message-text.json` and `stream-text.sse`, Gemini
 * `generate-content-text.json` and `stream-text.sse`, Bedrock
 * `converse-text.json` and the events of `converse-stream-text.eventstream.bin`):
 *
 * - Anthropic Messages: one `message` and its SSE stream, framing and padding
 *   as recorded (message_start, content_block_start, ping, one text delta,
 *   content_block_stop, message_delta, message_stop);
 * - Gemini: one `GenerateContentResponse` and three SSE chunks (`alt=sse`);
 * - Bedrock Converse: one `ConverseResponse` and a ConverseStream of six
 *   events (messageStart, two text deltas, contentBlockStop, messageStop,
 *   metadata) with their recorded `"p"` padding, in AWS event-stream binary
 *   framing, encoded once (CRC32 from `node:zlib`).
 */
import { crc32 } from "node:zlib"

/** Anthropic: the `message` body. */
export const anthropicMessage = JSON.stringify({
  model: "claude-sonnet-4-5-20250929",
  id: "msg_01VdEjxAP5ahtHKrrRdNBteQ",
  type: "message",
  role: "assistant",
  content: [{
    type: "text",
    text: "Hello! I'm doing well, thanks for asking. How are you doing today? Is there anything I can help you with?"
  }],
  stop_reason: "end_turn",
  stop_sequence: null,
  usage: {
    input_tokens: 12,
    cache_creation_input_tokens: 0,
    cache_read_input_tokens: 0,
    cache_creation: { ephemeral_5m_input_tokens: 0, ephemeral_1h_input_tokens: 0 },
    output_tokens: 29,
    service_tier: "standard",
    inference_geo: "not_available"
  }
})

/** Anthropic: the SSE stream's text, as recorded (trailing spaces inside `data:` lines included). */
export const anthropicSse = [
  `event: message_start\ndata: {"type":"message_start","message":{"model":"claude-haiku-4-5-20251001","id":"msg_01T8kTq7cYyYJeQ5DxcVUc6D","type":"message","role":"assistant","content":[],"stop_reason":null,"stop_sequence":null,"stop_details":null,"usage":{"input_tokens":10,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"cache_creation":{"ephemeral_5m_input_tokens":0,"ephemeral_1h_input_tokens":0},"output_tokens":2,"service_tier":"standard","inference_geo":"not_available"}} }\n\n`,
  `event: content_block_start\ndata: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}               }\n\n`,
  `event: ping\ndata: {"type": "ping"}\n\n`,
  `event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}               }\n\n`,
  `event: content_block_stop\ndata: {"type":"content_block_stop","index":0    }\n\n`,
  `event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null,"stop_details":null},"usage":{"input_tokens":10,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":4}}\n\n`,
  `event: message_stop\ndata: {"type":"message_stop"   }\n\n`
].join("")

/** Gemini: the `GenerateContentResponse` body. */
export const googleResponse = JSON.stringify({
  candidates: [{
    content: {
      parts: [{
        text: "There are **3** r's in strawberry.\n\nHere is the breakdown: st**r**awbe**rr**y.",
        thoughtSignature:
          "EtoFCtcFAb4+9vtfe4MXRxQjw48U1WKrR/7lYsgFkVi/bepqsSPjY0VU7HEzkeCBIfy1fu5t9aUZ4IZ65aWagqbBrV45fc97olcg"
      }],
      role: "model"
    },
    finishReason: "STOP",
    index: 0
  }],
  usageMetadata: {
    promptTokenCount: 9,
    candidatesTokenCount: 28,
    totalTokenCount: 281,
    promptTokensDetails: [{ modality: "TEXT", tokenCount: 9 }],
    thoughtsTokenCount: 244
  },
  modelVersion: "gemini-3-pro-preview",
  responseId: "Un6LacrVMcjUxs0PmJfWoQc"
})

/** Gemini: the `streamGenerateContent?alt=sse` text, as recorded (CRLF framing). */
export const googleSse = [
  `data: {"candidates": [{"content": {"parts": [{"text": "The"}],"role": "model"}}],"usageMetadata": {"promptTokenCount": 15,"totalTokenCount": 15,"promptTokensDetails": [{"modality": "TEXT","tokenCount": 15}]},"modelVersion": "gemini-2.0-flash-exp","responseId": "w1peaMz6INOvnvgPgYfPiQY"}\r\n\r\n`,
  `data: {"candidates": [{"content": {"parts": [{"text": " capital of France"}],"role": "model"}}],"usageMetadata": {"promptTokenCount": 15,"totalTokenCount": 15,"promptTokensDetails": [{"modality": "TEXT","tokenCount": 15}]},"modelVersion": "gemini-2.0-flash-exp","responseId": "w1peaMz6INOvnvgPgYfPiQY"}\r\n\r\n`,
  `data: {"candidates": [{"content": {"parts": [{"text": " is Paris.\\n"}],"role": "model"},"finishReason": "STOP"}],"usageMetadata": {"promptTokenCount": 13,"candidatesTokenCount": 8,"totalTokenCount": 21,"promptTokensDetails": [{"modality": "TEXT","tokenCount": 13}],"candidatesTokensDetails": [{"modality": "TEXT","tokenCount": 8}]},"modelVersion": "gemini-2.0-flash-exp","responseId": "w1peaMz6INOvnvgPgYfPiQY"}\r\n\r\n`
].join("")

/** Bedrock: the `ConverseResponse` body. */
export const bedrockConverse = JSON.stringify({
  metrics: { latencyMs: 1864 },
  output: {
    message: {
      content: [{
        text: "Let me count the \"r\"s in \"strawberry\":\n\ns-t-**r**-a-w-b-e-**r**-**r**-y\n\nThere are **3** \"r\"s in \"strawberry.\""
      }],
      role: "assistant"
    }
  },
  stopReason: "end_turn",
  usage: {
    cacheReadInputTokenCount: 0,
    cacheReadInputTokens: 0,
    cacheWriteInputTokenCount: 0,
    cacheWriteInputTokens: 0,
    inputTokens: 22,
    outputTokens: 57,
    serverToolUsage: {},
    totalTokens: 79
  }
})

/** One AWS event-stream frame: `[total][headers length][prelude CRC][headers][payload][message CRC]`. */
const frame = (eventType: string, payload: object): Buffer => {
  const headers = Buffer.concat(
    Object.entries({ ":event-type": eventType, ":content-type": "application/json", ":message-type": "event" }).map(
      ([name, value]) => {
        const n = Buffer.from(name)
        const v = Buffer.from(value)
        const h = Buffer.alloc(4 + n.length + v.length)
        h.writeUInt8(n.length, 0)
        n.copy(h, 1)
        h.writeUInt8(7, 1 + n.length) // string
        h.writeUInt16BE(v.length, 2 + n.length)
        v.copy(h, 4 + n.length)
        return h
      }
    )
  )
  const body = Buffer.from(JSON.stringify(payload))
  const total = 12 + headers.length + body.length + 4
  const out = Buffer.alloc(total)
  out.writeUInt32BE(total, 0)
  out.writeUInt32BE(headers.length, 4)
  out.writeUInt32BE(crc32(out.subarray(0, 8)), 8)
  headers.copy(out, 12)
  body.copy(out, 12 + headers.length)
  out.writeUInt32BE(crc32(out.subarray(0, total - 4)), total - 4)
  return out
}

/** Bedrock: the ConverseStream body (`application/vnd.amazon.eventstream`), built once. */
export const bedrockStream: Buffer = Buffer.concat([
  frame("messageStart", { p: "abcdefghijklmnopqr", role: "assistant" }),
  frame("contentBlockDelta", {
    contentBlockIndex: 0,
    delta: { text: "The" },
    p: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
  }),
  frame("contentBlockDelta", {
    contentBlockIndex: 0,
    delta: { text: " capital of France is Paris." },
    p: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJK"
  }),
  frame("contentBlockStop", { contentBlockIndex: 0, p: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOP" }),
  frame("messageStop", { p: "abcdefghijklmno", stopReason: "end_turn" }),
  frame("metadata", {
    metrics: { latencyMs: 522 },
    p: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVW",
    usage: { inputTokens: 13, outputTokens: 82, serverToolUsage: {}, totalTokens: 95 }
  })
])
