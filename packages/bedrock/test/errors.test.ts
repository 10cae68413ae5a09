/**
 * Error mapping: every Bedrock status and exception the simulator can send,
 * stream cuts and in-band exceptions, SDK-level failures, and the exception
 * classes themselves (for headers the simulator does not send).
 */
import { assert, describe, it, layer } from "@effect/vitest"
import {
  AccessDeniedException,
  ModelNotReadyException,
  ServiceQuotaExceededException,
  ThrottlingException,
  ValidationException
} from "@aws-sdk/client-bedrock-runtime"
import { Deadline, Llm, type LlmError } from "@switchboard/core"
import { Sim } from "@switchboard/sim"
import { Duration, Effect, Stream } from "effect"
import { toLlmError } from "../src/internal/errors.ts"
import { fault, modelLayer, SECRET, user } from "./helpers.ts"

const statusCases: ReadonlyArray<readonly [string, LlmError.Tag, string?]> = [
  ["status=400", "InvalidRequest"],
  ["status=400;message=Input is too long for requested model.", "ContextLengthExceeded"],
  ["status=401", "AuthenticationFailed"],
  ["status=403", "PermissionDenied"],
  ["status=404", "ModelNotFound"],
  ["status=408", "Timeout"],
  ["status=424", "ServerError", "424"],
  ["status=429", "RateLimited"],
  ["status=500", "ServerError", "500"],
  ["status=502", "ServerError", "502"],
  ["status=503", "Overloaded"],
  ["status=504", "Timeout"],
  ["status=529", "Overloaded"]
]

const streamOf = (layer: ReturnType<typeof modelLayer>) =>
  Stream.runCollect(Llm.stream(user("Tell me a story"))).pipe(Effect.provide(layer))

layer(Sim.layer(), { excludeTestServices: true })("Bedrock errors from the simulator", (it) => {
  for (const [header, tag, status] of statusCases) {
    it.effect(`x-sim-fault ${header} fails with ${tag}, whole and streamed`, () =>
      Effect.gen(function*() {
        const sim = yield* Sim.SimServer
        const layer = modelLayer(sim, fault(header))
        const error = yield* Effect.flip(Llm.generate(user("x")).pipe(Effect.provide(layer)))
        assert.strictEqual(error._tag, tag)
        if (status !== undefined && error._tag === "ServerError") assert.strictEqual(error.status, Number(status))
        const streamed = yield* Effect.flip(streamOf(layer))
        assert.strictEqual(streamed._tag, tag)
      }))
  }

  it.effect("a 429 ThrottlingException about tokens is RateLimited with the tokens scope", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const error = yield* Effect.flip(
        Llm.generate(user("x")).pipe(
          Effect.provide(modelLayer(sim, fault("status=429;message=Too many tokens, please wait before trying again.")))
        )
      )
      assert.strictEqual(error._tag, "RateLimited")
      if (error._tag === "RateLimited") {
        assert.strictEqual(error.scope, "tokens")
        assert.strictEqual(error.source, "provider")
      }
    }))

  it.effect("an unknown model id (400 'The provided model identifier is invalid.') is ModelNotFound", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const error = yield* Effect.flip(Llm.generate(user("x")).pipe(Effect.provide(modelLayer(sim, {}, "us.nope-v1:0"))))
      assert.strictEqual(error._tag, "ModelNotFound")
      if (error._tag === "ModelNotFound") assert.strictEqual(error.model, "us.nope-v1:0")
    }))

  it.effect("a prompt beyond the context window is ContextLengthExceeded", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const huge = "word ".repeat(140_000)
      const error = yield* Effect.flip(Llm.generate(user(huge)).pipe(Effect.provide(modelLayer(sim))))
      assert.strictEqual(error._tag, "ContextLengthExceeded")
    }))

  it.effect("maxTokens above the model's output limit is ContextLengthExceeded (Bedrock's 'maximum tokens' wording)", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const error = yield* Effect.flip(
        Llm.generate({ ...user("x"), maxTokens: 50_000 }).pipe(Effect.provide(modelLayer(sim)))
      )
      assert.strictEqual(error._tag, "ContextLengthExceeded")
    }))

  it.effect("a malformed JSON body is MalformedResponse", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const error = yield* Effect.flip(Llm.generate(user("x")).pipe(Effect.provide(modelLayer(sim, fault("malformed")))))
      assert.strictEqual(error._tag, "MalformedResponse")
    }))

  it.effect("a body cut mid-way is NetworkError", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const error = yield* Effect.flip(Llm.generate(user("x")).pipe(Effect.provide(modelLayer(sim, fault("cut-after=1")))))
      assert.strictEqual(error._tag, "NetworkError")
    }))

  it.effect("a stream cut after some events fails with NetworkError after its first deltas, never ending clean", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const seen: Array<string> = []
      const error = yield* Effect.flip(
        Stream.runForEach(Llm.stream(user("Tell me a story")), (part) => Effect.sync(() => seen.push(part.type))).pipe(
          Effect.provide(modelLayer(sim, fault("cut-after=3")))
        )
      )
      assert.strictEqual(error._tag, "NetworkError")
      assert.deepStrictEqual(seen, ["text-delta", "text-delta"])
    }))

  it.effect("a stream truncated mid-frame fails with NetworkError", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const error = yield* Effect.flip(streamOf(modelLayer(sim, fault("truncate=2"))))
      assert.strictEqual(error._tag, "NetworkError")
    }))

  it.effect("an in-band serviceUnavailableException event fails the stream with Overloaded", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const seen: Array<string> = []
      const error = yield* Effect.flip(
        Stream.runForEach(Llm.stream(user("Tell me a story")), (part) => Effect.sync(() => seen.push(part.type))).pipe(
          Effect.provide(modelLayer(sim, fault("stream-error=2")))
        )
      )
      assert.strictEqual(error._tag, "Overloaded")
      assert.deepStrictEqual(seen, ["text-delta"])
    }))

  it.effect("a malformed stream event fails with MalformedResponse", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const error = yield* Effect.flip(streamOf(modelLayer(sim, fault("malformed"))))
      assert.strictEqual(error._tag, "MalformedResponse")
    }))

  it.effect("the time left before the deadline becomes the SDK request timeout", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      // The deadline is set on the fiber only (no request.deadline), so only the SDK timeout can fire.
      const start = Date.now()
      const error = yield* Effect.flip(
        Llm.generate(user("x")).pipe(
          Effect.provideService(Deadline.CurrentDeadline, Date.now() + 300),
          Effect.provide(modelLayer(sim, fault("stall-ms=3000")))
        )
      )
      assert.strictEqual(error._tag, "Timeout")
      if (error._tag === "Timeout") assert.isAtMost(Duration.toMillis(error.after), 300)
      assert.isBelow(Date.now() - start, 2000)
    }))

  it.effect("a request deadline bounds a stalled stream with Timeout", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const start = Date.now()
      const error = yield* Effect.flip(
        Stream.runCollect(Llm.stream({ ...user("x"), deadline: 300 })).pipe(
          Effect.provide(modelLayer(sim, fault("stall-mid-ms=3000;stall-after=2")))
        )
      )
      assert.strictEqual(error._tag, "Timeout")
      assert.isBelow(Date.now() - start, 2000)
    }))

  it.effect("an error message echoing the secret access key is redacted", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const error = yield* Effect.flip(
        Llm.generate(user("x")).pipe(Effect.provide(modelLayer(sim, fault(`status=400;message=bad key ${SECRET}`))))
      )
      assert.strictEqual(error._tag, "InvalidRequest")
      assert.include(error.message, "<redacted>")
      for (const text of [error.message, String(error), JSON.stringify(error)]) assert.notInclude(text, SECRET)
    }))
})

describe("toLlmError on SDK exception classes", () => {
  const context = { provider: "bedrock", model: "m", secrets: [SECRET], timeoutMs: 1500 }
  const withHeaders = <E extends object>(error: E, headers: Record<string, string>): E =>
    Object.assign(error, { $response: { statusCode: 429, headers } })

  it("ThrottlingException reads retry-after when a proxy sends one", () => {
    const error = toLlmError(
      withHeaders(
        new ThrottlingException({ message: "Too many requests, please wait before trying again.", $metadata: { httpStatusCode: 429 } }),
        { "retry-after": "3" }
      ),
      context
    )
    assert.strictEqual(error._tag, "RateLimited")
    if (error._tag === "RateLimited") {
      assert.strictEqual(Duration.toMillis(error.retryAfter!), 3000)
      assert.strictEqual(error.scope, "requests")
    }
  })

  it("ModelNotReadyException is Overloaded (retry later), ServiceQuotaExceededException is QuotaExhausted", () => {
    const notReady = toLlmError(new ModelNotReadyException({ message: "Model is not ready", $metadata: { httpStatusCode: 429 } }), context)
    assert.strictEqual(notReady._tag, "Overloaded")
    const quota = toLlmError(
      new ServiceQuotaExceededException({ message: "quota", $metadata: { httpStatusCode: 400 } }),
      context
    )
    assert.strictEqual(quota._tag, "QuotaExhausted")
  })

  it("AccessDeniedException is PermissionDenied; UnrecognizedClientException is AuthenticationFailed", () => {
    assert.strictEqual(
      toLlmError(new AccessDeniedException({ message: "no", $metadata: { httpStatusCode: 403 } }), context)._tag,
      "PermissionDenied"
    )
    const unrecognized = Object.assign(new Error("The security token included in the request is invalid."), {
      name: "UnrecognizedClientException",
      $metadata: { httpStatusCode: 403 }
    })
    assert.strictEqual(toLlmError(unrecognized, context)._tag, "AuthenticationFailed")
    const noCredentials = Object.assign(new Error("Could not load credentials from any providers"), {
      name: "CredentialsProviderError"
    })
    assert.strictEqual(toLlmError(noCredentials, context)._tag, "AuthenticationFailed")
  })

  it("ValidationException reads context sizes from Anthropic-on-Bedrock wording", () => {
    const error = toLlmError(
      new ValidationException({
        message: "The model returned the following errors: prompt is too long: 210000 tokens > 200000 maximum",
        $metadata: { httpStatusCode: 400 }
      }),
      context
    )
    assert.strictEqual(error._tag, "ContextLengthExceeded")
    if (error._tag === "ContextLengthExceeded") {
      assert.strictEqual(error.limit, 200000)
      assert.strictEqual(error.requested, 210000)
    }
  })

  it("transport failures are NetworkError and the handler's TimeoutError is Timeout { after }", () => {
    const reset = Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" })
    assert.strictEqual(toLlmError(reset, context)._tag, "NetworkError")
    const refused = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:1"), { code: "ECONNREFUSED" })
    assert.strictEqual(toLlmError(refused, context)._tag, "NetworkError")
    const timeout = Object.assign(new Error("Stream timed out because of no activity for 1500 ms"), { name: "TimeoutError" })
    const mapped = toLlmError(timeout, context)
    assert.strictEqual(mapped._tag, "Timeout")
    if (mapped._tag === "Timeout") assert.strictEqual(Duration.toMillis(mapped.after), 1500)
  })

  it("never a thrown value that is not an Error: strings map to NetworkError with the secret removed", () => {
    const error = toLlmError(`boom ${SECRET}`, context)
    assert.strictEqual(error._tag, "NetworkError")
    assert.notInclude(String(error), SECRET)
  })
})
