/**
 * Encoder for the AWS event-stream binary framing
 * (`application/vnd.amazon.eventstream`) used by Bedrock ConverseStream:
 * `[total len][headers len][prelude crc][headers][payload][message crc]`,
 * big-endian, CRC32 over the prelude and over the whole message.
 *
 * @internal
 */
import { crc32 } from "node:zlib"

const STRING_TYPE = 7

/** Encodes one frame with string headers and a payload. */
export const encodeFrame = (headers: Record<string, string>, payload: Uint8Array | string): Uint8Array => {
  const body = typeof payload === "string" ? Buffer.from(payload, "utf8") : payload
  const encoded: Array<Buffer> = []
  let headersLength = 0
  for (const [name, value] of Object.entries(headers)) {
    const n = Buffer.from(name, "utf8")
    const v = Buffer.from(value, "utf8")
    const h = Buffer.alloc(1 + n.length + 1 + 2 + v.length)
    h.writeUInt8(n.length, 0)
    n.copy(h, 1)
    h.writeUInt8(STRING_TYPE, 1 + n.length)
    h.writeUInt16BE(v.length, 2 + n.length)
    v.copy(h, 4 + n.length)
    encoded.push(h)
    headersLength += h.length
  }
  const total = 12 + headersLength + body.length + 4
  const out = Buffer.alloc(total)
  out.writeUInt32BE(total, 0)
  out.writeUInt32BE(headersLength, 4)
  out.writeUInt32BE(crc32(out.subarray(0, 8)), 8)
  let offset = 12
  for (const h of encoded) {
    h.copy(out, offset)
    offset += h.length
  }
  Buffer.from(body.buffer, body.byteOffset, body.byteLength).copy(out, offset)
  out.writeUInt32BE(crc32(out.subarray(0, total - 4)), total - 4)
  return out
}

/** An `:message-type: event` frame carrying a JSON payload. */
export const eventFrame = (eventType: string, payload: unknown): Uint8Array =>
  encodeFrame(
    { ":event-type": eventType, ":content-type": "application/json", ":message-type": "event" },
    JSON.stringify(payload)
  )

/** An `:message-type: exception` frame (e.g. `throttlingException`). */
export const exceptionFrame = (exceptionType: string, message: string): Uint8Array =>
  encodeFrame(
    { ":exception-type": exceptionType, ":content-type": "application/json", ":message-type": "exception" },
    JSON.stringify({ message })
  )

/** Decodes frames (used by tests and replay checks). */
export const decodeFrames = (
  bytes: Uint8Array
): Array<{ headers: Record<string, string>; payload: Uint8Array }> => {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const out: Array<{ headers: Record<string, string>; payload: Uint8Array }> = []
  let offset = 0
  while (offset + 16 <= buf.length) {
    const total = buf.readUInt32BE(offset)
    const headersLength = buf.readUInt32BE(offset + 4)
    const headers: Record<string, string> = {}
    let p = offset + 12
    const end = p + headersLength
    while (p < end) {
      const nl = buf.readUInt8(p)
      const name = buf.toString("utf8", p + 1, p + 1 + nl)
      const type = buf.readUInt8(p + 1 + nl)
      if (type !== STRING_TYPE) throw new Error(`unsupported header type ${type}`)
      const vl = buf.readUInt16BE(p + 2 + nl)
      headers[name] = buf.toString("utf8", p + 4 + nl, p + 4 + nl + vl)
      p += 4 + nl + vl
    }
    out.push({ headers, payload: buf.subarray(end, offset + total - 4) })
    offset += total
  }
  return out
}
