import { assert, describe, it } from "@effect/vitest"
import * as fc from "fast-check"
import { ServerSentEvents } from "../src/provider/index.ts"

/** A body that hands over `chunks` one read at a time, recording whether its reader cancelled it. */
const bodyOf = (chunks: ReadonlyArray<Uint8Array>, failWith?: unknown) => {
  let next = 0
  const state = { cancelled: false }
  const body = new ReadableStream<Uint8Array>({
    pull: (controller) => {
      if (next < chunks.length) controller.enqueue(chunks[next++]!)
      else if (failWith !== undefined) controller.error(failWith)
      else controller.close()
    },
    cancel: () => {
      state.cancelled = true
    }
  }, { highWaterMark: 0 })
  return { body, state }
}

const encoder = new TextEncoder()

const collect = async (body: ReadableStream<Uint8Array>) => {
  const out: Array<{ event: string | undefined; data: string }> = []
  for await (const message of ServerSentEvents.messages(body)) out.push({ event: message.event, data: message.data })
  return out
}

/** `bytes` cut at `cuts` (positions, any order), so a character's bytes or a line ending may straddle two reads. */
const split = (bytes: Uint8Array, cuts: ReadonlyArray<number>): Array<Uint8Array> => {
  const at = [...new Set(cuts.map((cut) => cut % (bytes.length + 1)))].sort((a, b) => a - b)
  const out: Array<Uint8Array> = []
  let from = 0
  for (const cut of [...at, bytes.length]) {
    if (cut > from) out.push(bytes.subarray(from, cut))
    from = cut
  }
  return out
}

describe("ServerSentEvents.messages", () => {
  it("hands over every event whole, however the body is cut into reads and whichever line endings it uses", async () => {
    const line = fc.string({ unit: "grapheme", maxLength: 12 }).filter((text) => !/[\r\n]/.test(text))
    const message = fc.record({
      event: fc.option(fc.stringMatching(/^[a-z_.]{1,12}$/), { nil: undefined }),
      lines: fc.array(line, { minLength: 1, maxLength: 3 })
    })
    await fc.assert(
      fc.asyncProperty(
        fc.array(message, { minLength: 1, maxLength: 6 }),
        fc.constantFrom("\n", "\r\n", "\r"),
        fc.array(fc.nat(), { maxLength: 12 }),
        async (messages, eol, cuts) => {
          const text = messages.map((m) =>
            `${m.event === undefined ? "" : `event: ${m.event}${eol}`}: a comment${eol}${
              m.lines.map((data) => `data: ${data}${eol}`).join("")
            }${eol}`
          ).join("")
          const { body } = bodyOf(split(encoder.encode(text), cuts))
          assert.deepStrictEqual(
            await collect(body),
            messages.map((m) => ({ event: m.event, data: m.lines.join("\n") }))
          )
        }
      ),
      { numRuns: 300 }
    )
  })

  it("discards an event the body ends in before its blank line, or hands it over when asked to", async () => {
    const cut = `data: {"n":1}\n\ndata: {"n":`
    const unclosed = `data: {"n":1}\n\ndata: {"n":2}\n`
    const read = async (text: string, options?: ServerSentEvents.Options) => {
      const out: Array<string> = []
      for await (const message of ServerSentEvents.messages(bodyOf([encoder.encode(text)]).body, options)) out.push(message.data)
      return out
    }
    assert.deepStrictEqual(await read(cut), [`{"n":1}`])
    assert.deepStrictEqual(await read(unclosed), [`{"n":1}`])
    assert.deepStrictEqual(await read(cut, { unterminated: "dispatch" }), [`{"n":1}`, `{"n":`])
    assert.deepStrictEqual(await read(unclosed, { unterminated: "dispatch" }), [`{"n":1}`, `{"n":2}`])
    // A body whose every event is closed is read alike either way.
    assert.deepStrictEqual(await read(`${unclosed}\n`, { unterminated: "dispatch" }), [`{"n":1}`, `{"n":2}`])
  })

  it("cancels the body when its reader stops early, and not when the body ended", async () => {
    const early = bodyOf([encoder.encode("data: 1\n\n"), encoder.encode("data: 2\n\n")])
    for await (const message of ServerSentEvents.messages(early.body)) {
      assert.strictEqual(message.data, "1")
      break
    }
    assert.isTrue(early.state.cancelled)
    const whole = bodyOf([encoder.encode("data: 1\n\n")])
    assert.deepStrictEqual(await collect(whole.body), [{ event: undefined, data: "1" }])
    assert.isFalse(whole.state.cancelled)
  })

  it("rejects with the body's own error when a read fails, after the events that came before it", async () => {
    const cut = new TypeError("terminated")
    const { body } = bodyOf([encoder.encode("data: 1\n\n")], cut)
    const seen: Array<string> = []
    const failure = await (async () => {
      for await (const message of ServerSentEvents.messages(body)) seen.push(message.data)
    })().then(() => undefined, (error: unknown) => error)
    assert.deepStrictEqual(seen, ["1"])
    assert.strictEqual(failure, cut)
  })
})
