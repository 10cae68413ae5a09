/**
 * One OS process of the multi-process Redis tests (run by test/redis.test.ts
 * with node 24). It reads one JSON command per line on stdin
 * (`{ id, scenario, url, prefix, ... }`), builds a full stack on
 * `Redis.layer` for it, runs the scenario and answers one JSON line
 * `{ id, result }` (or `{ id, error }`) on stdout.
 */
import * as readline from "node:readline"
import { Budget, CircuitBreaker, Llm, LlmError, RateLimit } from "@switchboard/core"
import type { LLM } from "@switchboard/core"
import { Redis } from "@switchboard/redis"
import { Effect, Layer, ManagedRuntime } from "effect"
import { Redis as EffectRedis } from "effect/persistence"

interface Args {
  readonly id: number
  readonly scenario:
    | "budget"
    | "budget-hang"
    | "budget-one"
    | "breaker-warm"
    | "breaker-open"
    | "breaker-check"
    | "ratelimit"
    | "cache"
  readonly url: string
  readonly prefix: string
  readonly calls?: number
  readonly limitUsd?: number
}

const mini = { provider: "openai", model: "gpt-4o-mini" }
const ask = { messages: [{ role: "user" as const, content: "question" }], maxTokens: 20 }

const down = new LlmError.ServerError({ provider: "openai", model: "gpt-4o-mini", status: 503 })

const run = <A, E>(stack: Layer.Layer<LLM | Llm.LlmTest, E>, program: Effect.Effect<A, unknown, LLM | Llm.LlmTest>) =>
  Effect.runPromise(Effect.scoped(Effect.provide(program, stack)) as Effect.Effect<A, unknown>)

/** Instances kept between commands, by prefix. */
const warm = new Map<string, ManagedRuntime.ManagedRuntime<LLM | Llm.LlmTest, unknown>>()

const scenariosFor = (args: Args) => {
const redis = Redis.layer({ url: args.url, prefix: args.prefix })
return {
  // 1,000 concurrent calls with random failures under one shared budget.
  budget: () => {
    const test = Llm.layerTest({
      ...mini,
      record: false,
      respond: () =>
        Math.random() < 0.3
          ? { error: down, delay: Math.floor(Math.random() * 5) }
          : { text: "ok", usage: { inputTokens: 8, outputTokens: 1 + Math.floor(Math.random() * 20) }, delay: Math.floor(Math.random() * 5) }
    })
    const stack = test.pipe(
      Budget.layer({ limitUsd: args.limitUsd ?? 0.01, window: "day", price: mini, name: "shared" }),
      Layer.provideMerge(test),
      Layer.provide(redis)
    )
    return run(stack, Effect.gen(function*() {
      const llm = yield* Llm.LLM
      const exits = yield* Effect.forEach(
        Array.from({ length: args.calls ?? 1000 }),
        () => Effect.exit(llm.generate(ask)),
        { concurrency: "unbounded" }
      )
      let spent = 0
      let ok = 0
      let refused = 0
      let failed = 0
      for (const exit of exits) {
        if (exit._tag === "Success") {
          ok++
          spent += exit.value.costUsd
        } else {
          const error = exit.cause.reasons.find((r) => r._tag === "Fail")
          if (error?._tag === "Fail" && (error.error as { _tag: string })._tag === "BudgetExceeded") refused++
          else failed++
        }
      }
      return { ok, refused, failed, spent }
    }))
  },
  // Fails until the shared circuit opens.
  "breaker-open": () => {
    const test = Llm.layerTest({ ...mini, steps: [{ error: down }] })
    const stack = test.pipe(
      CircuitBreaker.layer({ failureThreshold: 3, cooldown: "1 minute", name: "shared" }),
      Layer.provideMerge(test),
      Layer.provide(redis)
    )
    return run(stack, Effect.gen(function*() {
      const llm = yield* Llm.LLM
      const tags: Array<string> = []
      for (let i = 0; i < 5; i++) tags.push((yield* Effect.flip(llm.generate(ask)))._tag)
      return { tags, providerCalls: (yield* (yield* Llm.LlmTest).requests).length }
    }))
  },
  // Ten calls reserve and then hang (this process is about to be killed): their reservations expire in 500 ms.
  "budget-hang": () => {
    const test = Llm.layerTest({ ...mini, record: false, steps: [{ text: "never", delay: "10 minutes" }] })
    const runtime = ManagedRuntime.make(test.pipe(
      Budget.layer({ limitUsd: 1, window: "day", price: mini, name: "crash", reservationTtl: "500 millis" }),
      Layer.provideMerge(redis)
    ))
    return runtime.runPromise(Effect.gen(function*() {
      const llm = yield* Llm.LLM
      const redisService = yield* EffectRedis.Redis
      for (let i = 0; i < 10; i++) yield* Effect.forkDetach(llm.generate(ask))
      // Until all ten hold their reservation in Redis.
      let held = 0
      while (held < 10) {
        yield* Effect.sleep(10)
        held = yield* redisService.send<number>("HLEN", `${args.prefix}b:h:crash:global`)
      }
      return { held }
    }))
  },
  // One call on the same budget from a live process.
  "budget-one": () => {
    const test = Llm.layerTest({ ...mini, record: false, steps: [{ text: "ok", usage: { inputTokens: 8, outputTokens: 2 } }] })
    const stack = test.pipe(
      Budget.layer({ limitUsd: 1, window: "day", price: mini, name: "crash", reservationTtl: "500 millis" }),
      Layer.provideMerge(test),
      Layer.provide(redis)
    )
    return run(stack, Effect.gen(function*() {
      const response = yield* (yield* Llm.LLM).generate(ask)
      return { costUsd: response.costUsd }
    }))
  },
  // A running instance serves the route once (the breaker learns which circuit a route is) ...
  "breaker-warm": () => {
    const test = Llm.layerTest({ ...mini, steps: [{ text: "answered" }] })
    const runtime = ManagedRuntime.make(test.pipe(
      CircuitBreaker.layer({ failureThreshold: 3, cooldown: "1 minute", name: "shared" }),
      Layer.provideMerge(test),
      Layer.provide(redis)
    ))
    warm.set(args.prefix, runtime)
    return runtime.runPromise(Effect.gen(function*() {
      const response = yield* (yield* Llm.LLM).generate(ask)
      return { text: response.text, providerCalls: (yield* (yield* Llm.LlmTest).requests).length }
    }))
  },
  // ... then, after another process opened the shared circuit, its next call fails fast.
  "breaker-check": () => {
    const runtime = warm.get(args.prefix)!
    return runtime.runPromise(Effect.gen(function*() {
      const error = yield* Effect.flip((yield* Llm.LLM).generate(ask))
      return { tag: error._tag, providerCalls: (yield* (yield* Llm.LlmTest).requests).length }
    })).finally(() => runtime.dispose())
  },
  // Every process fires `calls` requests at one shared requests-per-minute limit.
  ratelimit: () => {
    const test = Llm.layerTest({ ...mini, record: false, steps: [{ text: "ok" }] })
    const stack = test.pipe(
      RateLimit.layer({ requests: { limit: 40, window: "1 minute" }, onExceeded: "fail", key: "shared", adaptive: false }),
      Layer.provideMerge(test),
      Layer.provide(redis)
    )
    return run(stack, Effect.gen(function*() {
      const llm = yield* Llm.LLM
      const exits = yield* Effect.forEach(Array.from({ length: args.calls ?? 30 }), () => Effect.exit(llm.generate(ask)), {
        concurrency: "unbounded"
      })
      return { ok: exits.filter((e) => e._tag === "Success").length }
    }))
  },
  // One deterministic request: a miss in the first process, a hit in the next.
  cache: () => {
    const test = Llm.layerTest({ ...mini, steps: [{ text: "cached answer", usage: { inputTokens: 5, outputTokens: 2 } }] })
    const stack = test.pipe(
      Redis.responseCache({ ttl: "1 minute" }),
      Layer.provideMerge(test),
      Layer.provide(redis)
    )
    return run(stack, Effect.gen(function*() {
      const llm = yield* Llm.LLM
      const response = yield* llm.generate({ ...ask, temperature: 0 })
      return { text: response.text, cached: response.cached, providerCalls: (yield* (yield* Llm.LlmTest).requests).length }
    }))
  }
}

}

readline.createInterface({ input: process.stdin }).on("line", (line) => {
  const args = JSON.parse(line) as Args
  scenariosFor(args)[args.scenario]().then(
    (result) => process.stdout.write(JSON.stringify({ id: args.id, result }) + "\n"),
    (error) => process.stdout.write(JSON.stringify({ id: args.id, error: error instanceof Error ? String(error.stack) : JSON.stringify(error) }) + "\n")
  )
})
process.stdout.write(JSON.stringify({ ready: true }) + "\n")
