/**
 * The provider machinery (`@switchboard/core/provider`): a whole provider
 * written on it — the example of `docs/providers.md` — and the guarantees
 * every leaf gets from `Provider.make`.
 */
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Exit, Layer, Result, Schema, Stream } from "effect"
import { Budget, CostLedger, Events, Llm, LlmError, type LlmRequest, LlmResponse, Pricing } from "../src/index.ts"
import { Decode, Provider, StreamAccumulator } from "../src/provider/index.ts"

// --- A provider on the machinery (the example of docs/providers.md) -----------

/** The wire format of the "echo" protocol: one event per piece of the answer. */
type EchoEvent =
  | { readonly type: "text"; readonly text: unknown }
  | { readonly type: "tool"; readonly index: number; readonly name?: string; readonly args?: string }
  | { readonly type: "done"; readonly reason: string; readonly input: unknown; readonly output: unknown }

class EchoClient extends Context.Service<EchoClient, {
  readonly provider: string
  /** What the "server" sends for a request. */
  readonly events: (request: LlmRequest.LlmRequest) => ReadonlyArray<EchoEvent>
}>()("test/EchoClient") {}

// One Schema per wire event, compiled once: the sanity rules come from Decode.
const decodeEvent = Decode.bodyDecoder(
  Schema.Union([
    Schema.Struct({ type: Schema.Literal("text"), text: Schema.String }),
    Schema.Struct({ type: Schema.Literal("tool"), index: Schema.Number, name: Schema.optional(Schema.String), args: Schema.optional(Schema.String) }),
    Schema.Struct({ type: Schema.Literal("done"), reason: Schema.String, input: Decode.Count, output: Decode.Count })
  ]),
  "an echo event"
)

const finishReasons: Record<string, LlmResponse.FinishReason> = { stop: "stop", filtered: "content-filter", tools: "tool-calls" }

// The table: one wire event → the accumulator's deltas (or the error it proves).
const table: StreamAccumulator.Table<EchoEvent> = (raw, acc) => {
  const event = decodeEvent(raw, { provider: acc.provider, model: acc.model })
  if (event instanceof LlmError.MalformedResponse) return event
  switch (event.type) {
    case "text":
      return [{ _tag: "text", text: event.text }]
    case "tool":
      return [{ _tag: "tool", index: event.index, name: event.name, input: event.args }]
    case "done":
      return [
        { _tag: "usage", usage: { inputTokens: event.input, outputTokens: event.output } },
        { _tag: "finish", reason: finishReasons[event.reason] ?? "other" }
      ]
  }
}

async function* replay<A>(events: ReadonlyArray<A>) {
  for (const event of events) yield event
}

const streamWith = (client: EchoClient["Service"]) => (request: LlmRequest.LlmRequest, model: string) =>
  StreamAccumulator.stream({
    provider: client.provider,
    model,
    open: StreamAccumulator.opened(replay(client.events(request)), () => {}),
    table,
    onError: (cause) => new LlmError.NetworkError({ provider: client.provider, model, detail: String(cause) })
  })

// A whole answer is the stream folded: the same table serves both calls.
const generateWith = (client: EchoClient["Service"]) => (request: LlmRequest.LlmRequest, model: string) =>
  Stream.runLast(streamWith(client)(request, model)).pipe(
    Effect.flatMap((last) =>
      last._tag === "Some" && last.value.type === "finish"
        ? Effect.succeed(last.value.response)
        : Effect.fail(new LlmError.NetworkError({ provider: client.provider, model, detail: "no finish" }))
    )
  )

/** `Echo.model(name, defaults?, options?)`: the provider's model layer, in one line. */
const model = Provider.model(EchoClient, { generate: generateWith, stream: streamWith })

// --- Tests ----------------------------------------------------------------------

const user: LlmRequest.LlmRequest = { messages: [{ role: "user", content: "hi" }] }

const serving = (events: ReadonlyArray<unknown>, options?: Provider.ModelOptions) =>
  model("echo-1", undefined, options).pipe(
    Layer.provide(Layer.succeed(EchoClient, EchoClient.of({ provider: "echo", events: () => events as ReadonlyArray<EchoEvent> })))
  )

const done = (reason = "stop", input: unknown = 3, output: unknown = 2) => ({ type: "done", reason, input, output })

describe("Provider.model over StreamAccumulator", () => {
  it.effect("a table of wire events streams deltas and ends with one finish part holding the whole answer", () =>
    Effect.gen(function*() {
      const events = [
        { type: "text", text: "hel" },
        { type: "text", text: "lo" },
        { type: "tool", index: 0, name: "lookup", args: "{\"q\":" },
        { type: "tool", index: 0, args: "1}" },
        done("tools")
      ]
      const parts = yield* Stream.runCollect(Llm.stream(user)).pipe(Effect.provide(serving(events)))
      assert.deepStrictEqual(parts.filter((p) => p.type === "text-delta").map((p) => p.type === "text-delta" && p.text), ["hel", "lo"])
      const last = parts[parts.length - 1]!
      assert.strictEqual(last.type, "finish")
      if (last.type !== "finish") return
      assert.strictEqual(last.response.text, "hello")
      assert.deepStrictEqual(last.response.toolCalls.map((c) => [c.name, c.input]), [["lookup", { q: 1 }]])
      assert.strictEqual(last.response.finishReason, "tool-calls")
      assert.strictEqual(last.response.usage.totalTokens, 5)
      assert.strictEqual(last.response.provider, "echo")
      assert.strictEqual(last.response.model, "echo-1")
      const whole = yield* Llm.generate(user).pipe(Effect.provide(serving(events)))
      assert.strictEqual(whole.text, "hello")
    }))

  it.effect("a source that ends before its finish reason fails with NetworkError (cut), never a clean end", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Stream.runCollect(Llm.stream(user)).pipe(Effect.provide(serving([{ type: "text", text: "x" }]))))
      assert.instanceOf(error, LlmError.NetworkError)
      assert.strictEqual(error.cause, "cut")
    }))

  it.effect("a tool call without a name, or with input that is not JSON, is MalformedResponse", () =>
    Effect.gen(function*() {
      const nameless = yield* Effect.flip(Llm.generate(user).pipe(Effect.provide(serving([{ type: "tool", index: 0, args: "{}" }, done("tools")]))))
      assert.instanceOf(nameless, LlmError.MalformedResponse)
      assert.include(nameless.detail, "no name")
      const notJson = yield* Effect.flip(
        Llm.generate(user).pipe(Effect.provide(serving([{ type: "tool", index: 0, name: "f", args: "{" }, done("tools")])))
      )
      assert.instanceOf(notJson, LlmError.MalformedResponse)
    }))

  it.effect("a wire event that breaks the Schema (text not a string, a negative count) is MalformedResponse naming the field", () =>
    Effect.gen(function*() {
      const text = yield* Effect.flip(Llm.generate(user).pipe(Effect.provide(serving([{ type: "text", text: 7 }, done()]))))
      assert.instanceOf(text, LlmError.MalformedResponse)
      const negative = yield* Effect.flip(Llm.generate(user).pipe(Effect.provide(serving([done("stop", -5)]))))
      assert.instanceOf(negative, LlmError.MalformedResponse)
      assert.include(negative.detail, "input")
    }))

  it.effect("a content-filter finish fails with ContentFiltered { text } by default, and is returned with contentFilter: return", () =>
    Effect.gen(function*() {
      const events = [{ type: "text", text: "partial" }, done("filtered")]
      const error = yield* Effect.flip(Llm.generate(user).pipe(Effect.provide(serving(events))))
      assert.instanceOf(error, LlmError.ContentFiltered)
      assert.strictEqual(error.text, "partial")
      const streamed = yield* Effect.flip(Stream.runCollect(Llm.stream(user)).pipe(Effect.provide(serving(events))))
      assert.instanceOf(streamed, LlmError.ContentFiltered)
      const returned = yield* Llm.generate(user).pipe(Effect.provide(serving(events, { contentFilter: "return" })))
      assert.strictEqual(returned.finishReason, "content-filter")
    }))
})

describe("Provider.make sanity checks", () => {
  const leaf = (usage: Partial<Record<keyof LlmResponse.Usage, unknown>>) =>
    Layer.succeed(Llm.LLM, Provider.make({
      provider: "openai",
      model: "gpt-4o-mini",
      generate: (_request, model) =>
        Effect.succeed({
          id: "x",
          provider: "openai",
          model,
          text: "hi",
          content: [],
          toolCalls: [],
          finishReason: "stop",
          usage: { inputTokens: 10, outputTokens: 10, cachedInputTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0, totalTokens: 20, ...usage } as LlmResponse.Usage,
          costUsd: 0,
          latencyMs: 1,
          cached: false,
          attempts: []
        }),
      stream: () => Stream.empty
    }))

  it.effect("an answer with insane usage (negative, Infinity) is MalformedResponse; the ledger records only what can be trusted", () =>
    Effect.gen(function*() {
      for (const bad of [{ inputTokens: -50 }, { outputTokens: Number.POSITIVE_INFINITY }, { totalTokens: 1.5 }]) {
        const exit = yield* Effect.exit(Llm.generate(user).pipe(Effect.provide(leaf(bad))))
        assert.isTrue(Exit.isFailure(exit))
        const error = Exit.isFailure(exit) ? exit.cause.reasons[0] : undefined
        assert.strictEqual(error?._tag, "Fail")
      }
      const totals = (yield* CostLedger.snapshot).total
      assert.strictEqual(totals.attempts, 3)
      assert.isTrue(totals.costUsd >= 0 && Number.isFinite(totals.costUsd))
      assert.isTrue(totals.inputTokens >= 0 && Number.isFinite(totals.outputTokens))
    }).pipe(Effect.provide(CostLedger.layer)))

  it("Decode.decoder names the field and what was wrong", () => {
    const decode = Decode.decoder(Schema.Struct({ usage: Schema.Struct({ prompt_tokens: Decode.Count }) }))
    for (const bad of [-50, 2.5, "12", 1e308]) {
      const result = decode({ usage: { prompt_tokens: bad } })
      assert.isTrue(Result.isFailure(result))
      if (Result.isFailure(result)) assert.include(result.failure, "usage.prompt_tokens")
    }
    assert.isTrue(Result.isSuccess(decode({ usage: { prompt_tokens: 12 } })))
  })
})

describe("Provider.model's events", () => {
  it.effect("a stream publishes AttemptStarted, then AttemptFailed naming the error; a stream that succeeds only AttemptStarted", () =>
    Effect.gen(function*() {
      const events: Array<string> = []
      yield* Effect.forkChild(Stream.runForEach(Events.stream, (e) =>
        Effect.sync(() => void events.push(e._tag === "AttemptFailed" ? `${e._tag} ${e.error} ${e.provider}/${e.model}` : e._tag))))
      yield* Effect.yieldNow
      // Cut: the source ends without its finish reason.
      yield* Effect.flip(Stream.runDrain(Llm.stream(user)).pipe(Effect.provide(serving([{ type: "text", text: "x" }]))))
      // Malformed: a wire event the decoder refuses.
      yield* Effect.flip(Stream.runDrain(Llm.stream(user)).pipe(Effect.provide(serving([{ type: "text", text: 1 }]))))
      yield* Stream.runDrain(Llm.stream(user)).pipe(Effect.provide(serving([{ type: "text", text: "x" }, done()])))
      yield* Effect.yieldNow
      assert.deepStrictEqual(events, [
        "AttemptStarted",
        "AttemptFailed NetworkError echo/echo-1",
        "AttemptStarted",
        "AttemptFailed MalformedResponse echo/echo-1",
        "AttemptStarted"
      ])
    }).pipe(Effect.provide(Events.layer())))
})

describe("Provider.model under a Budget", () => {
  it.effect("a stream the content filter fails is charged at what its attempt billed, and nothing stays reserved", () =>
    Effect.gen(function*() {
      const mini = { provider: "openai", model: "gpt-4o-mini" }
      const leaf = model(mini.model).pipe(
        Layer.provide(Layer.succeed(EchoClient, EchoClient.of({
          provider: mini.provider,
          events: () => [{ type: "text", text: "x" }, done("filtered", 1_000, 1_000)] as ReadonlyArray<EchoEvent>
        })))
      )
      const budget = yield* Budget.make({ limitUsd: 100, window: "day", price: mini })
      const error = yield* Effect.flip(Stream.runDrain(Llm.stream(user)).pipe(Effect.provide(budget.layer(leaf))))
      assert.strictEqual(error._tag, "ContentFiltered")
      const billed = Pricing.make(Pricing.shippedCatalog)
        .cost(mini.provider, mini.model, LlmResponse.makeUsage({ inputTokens: 1_000, outputTokens: 1_000 })).costUsd
      assert.isAbove(billed, 0)
      const state = yield* budget.state()
      // The leaf told the budget what the attempt billed; its error alone says nothing of it.
      assert.closeTo(state.spentUsd, billed, 1e-12)
      assert.strictEqual(state.reservedUsd, 0)
    }))
})

describe("Provider.requireFinish", () => {
  it.effect("passes a stream that ends with its finish part, and fails one that ends without it as cut", () =>
    Effect.gen(function*() {
      const origin = { provider: "echo", model: "echo-1" }
      const finished = yield* Stream.runCollect(Llm.stream(user)).pipe(Effect.provide(serving([{ type: "text", text: "x" }, done()])))
      const again = yield* Stream.runCollect(Provider.requireFinish(origin)(Stream.fromIterable(finished)))
      assert.deepStrictEqual(again, finished)
      const cut = yield* Effect.flip(Stream.runDrain(Provider.requireFinish(origin)(Stream.make<[LlmResponse.StreamPart]>({ type: "text-delta", text: "x" }))))
      assert.instanceOf(cut, LlmError.NetworkError)
      assert.strictEqual(cut.cause, "cut")
      assert.strictEqual(cut.provider, "echo")
    }))
})

describe("StreamAccumulator.stream given a setup", () => {
  it.effect("runs it on every run: each run opens afresh with its own state", () =>
    Effect.gen(function*() {
      let setups = 0
      let opens = 0
      const parts = StreamAccumulator.stream(() => {
        const run = ++setups
        return {
          provider: "echo",
          model: "echo-1",
          open: Effect.suspend(() => {
            opens++
            return StreamAccumulator.opened(replay<EchoEvent>([{ type: "text", text: `run ${run}` }, done() as EchoEvent]), () => {})
          }),
          table,
          onError: (cause) => new LlmError.NetworkError({ provider: "echo", model: "echo-1", detail: String(cause) })
        }
      })
      const texts = (all: ReadonlyArray<LlmResponse.StreamPart>) => all.flatMap((p) => p.type === "text-delta" ? [p.text] : [])
      assert.deepStrictEqual(texts(yield* Stream.runCollect(parts)), ["run 1"])
      assert.deepStrictEqual(texts(yield* Stream.runCollect(parts)), ["run 2"])
      assert.deepStrictEqual([setups, opens], [2, 2])
    }))

  it.effect("an LlmError from the setup fails the run with it", () =>
    Effect.gen(function*() {
      const invalid = new LlmError.InvalidRequest({ provider: "echo", model: "echo-1", field: "messages", message: "messages: empty" })
      const parts = StreamAccumulator.stream((): StreamAccumulator.StreamOptions<EchoEvent, never> | LlmError.LlmError => invalid)
      assert.strictEqual(yield* Effect.flip(Stream.runDrain(parts)), invalid)
    }))
})
