import { describe, expect, it } from "@effect/vitest"
import { SwitchboardConfig } from "@switchboard/config"
import { PromptRegistry } from "@switchboard/core"
import { Effect, Redacted } from "effect"
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

const dir = mkdtempSync(join(tmpdir(), "switchboard-config-"))
let counter = 0
const write = (text: string, ext = "yaml"): string => {
  const file = join(dir, `c${counter++}.${ext}`)
  writeFileSync(file, text)
  return file
}

const base = `
version: 1
providers:
  openai: { type: openai, apiKey: "sk-test-secret-1234", baseURL: "http://127.0.0.1:1/v1" }
  groq: { type: openai-compatible, baseURL: "http://127.0.0.1:1/groq/v1", apiKey: "gsk-secret-5678" }
  anthropic: { type: anthropic, apiKey: "sk-ant-secret-9999", baseURL: "http://127.0.0.1:1/anthropic" }
models:
  fast: { provider: openai, model: gpt-4o-mini, retry: { times: 2 } }
  claude: { provider: anthropic, model: claude-haiku-4-5 }
  cheap: { provider: groq, model: llama-3.1-8b-instant }
routes:
  default: { fallback: [fast, claude], midStream: fail }
  smart: { router: { strategy: leastCost, candidates: [fast, claude, cheap] } }
`

const errorsOf = (file: string, options: SwitchboardConfig.LoadOptions = {}) =>
  Effect.flip(SwitchboardConfig.load(file, { env: {}, ...options }))

describe("SwitchboardConfig.load", () => {
  it.effect("loads a valid file: providers, models, routes; secrets become Redacted", () =>
    Effect.gen(function*() {
      const config = yield* SwitchboardConfig.load(write(base), { env: {} })
      expect(Object.keys(config.raw.routes)).toEqual(["default", "smart"])
      expect([...config.providers.keys()]).toEqual(["openai", "groq", "anthropic"])
      const openai = config.providers.get("openai")!
      expect(openai.type).toBe("openai")
      const apiKey = (openai.options as { apiKey: Redacted.Redacted<string> }).apiKey
      expect(Redacted.isRedacted(apiKey)).toBe(true)
      expect(Redacted.value(apiKey)).toBe("sk-test-secret-1234")
      expect(String(apiKey)).not.toContain("sk-test")
    }))

  it.effect("reads JSON by extension", () =>
    Effect.gen(function*() {
      const json = JSON.stringify({
        version: 1,
        providers: { openai: { type: "openai", apiKey: "k" } },
        models: { fast: { provider: "openai", model: "gpt-4o-mini" } },
        routes: { default: { fallback: ["fast"] } }
      })
      const config = yield* SwitchboardConfig.load(write(json, "json"), { env: {} })
      expect(config.raw.models["fast"]?.model).toBe("gpt-4o-mini")
    }))

  it.effect("expands ${VAR} and ${VAR:-default}; $${ is a literal", () =>
    Effect.gen(function*() {
      const file = write(base.replace("http://127.0.0.1:1/v1", "${BASE:-http://127.0.0.1:2/v1}").replace(
        "sk-test-secret-1234",
        "${OPENAI_KEY}"
      ).replace("llama-3.1-8b-instant", () => `"llama-$\${x}"`))
      const config = yield* SwitchboardConfig.load(file, { env: { OPENAI_KEY: "from-env" } })
      const options = config.providers.get("openai")!.options as { apiKey: Redacted.Redacted<string>; baseURL: string }
      expect(Redacted.value(options.apiKey)).toBe("from-env")
      expect(options.baseURL).toBe("http://127.0.0.1:2/v1")
      expect(config.raw.models["cheap"]?.model).toBe("llama-${x}")
    }))

  it.effect("a missing variable without default names the variable and the path", () =>
    Effect.gen(function*() {
      const error = yield* errorsOf(write(base.replace("sk-test-secret-1234", "${OPENAI_KEY}")))
      expect(error.path).toBe("providers.openai.apiKey")
      expect(error.message).toContain("OPENAI_KEY")
    }))

  it.effect("environments are deep-merged over the base (dev picks the cheap chain)", () =>
    Effect.gen(function*() {
      const file = write(`${base}
environments:
  dev: { routes: { default: { fallback: [cheap] } } }
  prod: { models: { fast: { model: gpt-4o } } }
`)
      const dev = yield* SwitchboardConfig.load(file, { env: {}, environment: "dev" })
      expect(dev.raw.routes["default"]).toEqual({ fallback: ["cheap"], midStream: "fail" })
      const prod = yield* SwitchboardConfig.load(file, { env: { SWITCHBOARD_ENV: "prod" } })
      expect(prod.environment).toBe("prod")
      expect(prod.raw.models["fast"]).toEqual({ provider: "openai", model: "gpt-4o", retry: { times: 2 } })
      const none = yield* SwitchboardConfig.load(file, { env: {} })
      expect(none.raw.routes["default"]).toEqual({ fallback: ["fast", "claude"], midStream: "fail" })
    }))

  it.effect("every error comes at once, each with its path and line", () =>
    Effect.gen(function*() {
      const error = yield* errorsOf(write(`
version: 1
providers:
  openai: { type: openai, apiKey: k }
models:
  fast: { provider: openai, model: gpt-4o-mini }
  bad: { provider: nope, model: x }
routes:
  default: { fallback: [fast, claud] }
  other: { fallback: [fsat] }
`))
      const issues = error.issues ?? []
      expect(issues.map((i) => i.path)).toEqual([
        "models.bad.provider",
        "routes.default.fallback[1]",
        "routes.other.fallback[0]"
      ])
      expect(issues[1]!.message).toContain(`unknown model "claud"; known: fast, bad`)
      expect(issues[1]!.message).toMatch(/c\d+\.yaml:9\)/)
      expect(error.summary.split("\n")).toHaveLength(3)
    }))
})

/** A table of broken files: each asserts the exact path of the first error. */
const broken: ReadonlyArray<readonly [string, string, string, string?]> = [
  ["no version", base.replace("version: 1", ""), "version"],
  ["wrong version", base.replace("version: 1", "version: 2"), "version"],
  ["unknown top-level key", `${base}\nextra: 1\n`, "extra"],
  ["providers missing", base.replace(/providers:[\s\S]*?models:/, "models:"), "providers"],
  ["unknown provider type", base.replace("type: anthropic", "type: anthropik"), "providers.anthropic.type"],
  [
    "provider option unknown",
    base.replace("type: anthropic,", "type: anthropic, region: x,"),
    "providers.anthropic.region"
  ],
  ["provider baseURL not a URL", base.replace("http://127.0.0.1:1/v1", "not a url"), "providers.openai.baseURL"],
  ["openai without apiKey", base.replace(`apiKey: "sk-test-secret-1234", `, ""), "providers.openai.apiKey"],
  ["compatible without baseURL", base.replace(`baseURL: "http://127.0.0.1:1/groq/v1", `, ""), "providers.groq.baseURL"],
  ["model without provider", base.replace("fast: { provider: openai, ", "fast: { "), "models.fast.provider"],
  ["model names unknown provider", base.replace("provider: groq", "provider: grok"), "models.cheap.provider", "known: openai, groq, anthropic"],
  ["model without model", base.replace("claude: { provider: anthropic, model: claude-haiku-4-5 }", "claude: { provider: anthropic }"), "models.claude.model"],
  ["model unknown key", base.replace("model: claude-haiku-4-5", "model: claude-haiku-4-5, retries: 3"), "models.claude.retries"],
  ["timeout not a duration", base.replace("model: claude-haiku-4-5", "model: claude-haiku-4-5, timeout: soon"), "models.claude.timeout"],
  ["defaults.temperature out of range", base.replace("model: claude-haiku-4-5", "model: claude-haiku-4-5, defaults: { temperature: 7 }"), "models.claude.defaults.temperature"],
  ["defaults.maxTokens zero", base.replace("model: claude-haiku-4-5", "model: claude-haiku-4-5, defaults: { maxTokens: 0 }"), "models.claude.defaults.maxTokens"],
  ["contentFilter unknown", base.replace("model: claude-haiku-4-5", "model: claude-haiku-4-5, contentFilter: drop"), "models.claude.contentFilter"],
  ["fallback names unknown model", base.replace("fallback: [fast, claude]", "fallback: [fast, claud]"), "routes.default.fallback[1]", `unknown model "claud"; known: fast, claude, cheap`],
  ["fallback empty", base.replace("fallback: [fast, claude]", "fallback: []"), "routes.default.fallback"],
  ["midStream unknown", base.replace("midStream: fail", "midStream: resume"), "routes.default.midStream"],
  ["router unknown strategy", base.replace("strategy: leastCost", "strategy: cheapest"), "routes.smart.router.strategy"],
  ["router candidate unknown", base.replace("candidates: [fast, claude, cheap]", "candidates: [fast, claude, cheep]"), "routes.smart.router.candidates[2]"],
  ["router no candidates", base.replace("candidates: [fast, claude, cheap]", "candidates: []"), "routes.smart.router.candidates"],
  ["byTask without tasks", base.replace("strategy: leastCost", "strategy: byTask"), "routes.smart.router.tasks"],
  ["byTask without default", base.replace("strategy: leastCost", "strategy: byTask, tasks: { code: [claude] }"), "routes.smart.router.tasks"],
  ["task names a non-candidate", base.replace("strategy: leastCost", "strategy: byTask, tasks: { default: [fast], code: [opus] }"), "routes.smart.router.tasks.code[0]"],
  ["weighted without weights", base.replace("strategy: leastCost", "strategy: weighted"), "routes.smart.router.candidates[0]"],
  ["weighted negative weight", base.replace("strategy: leastCost, candidates: [fast, claude, cheap]", "strategy: weighted, candidates: [{ name: fast, weight: -1 }, { name: claude, weight: 1 }]"), "routes.smart.router.candidates[0].weight"],
  ["route of no kind", base.replace("default: { fallback: [fast, claude], midStream: fail }", "default: { models: [fast] }"), "routes.default", "expected one of fallback, router, model"],
  ["onSoft names a missing route", `${base}\nlimits: { budget: { limitUsd: 1, window: day, softAt: 0.8, onSoft: cheapest } }\n`, "limits.budget.onSoft", "known: default, smart"],
  ["budget count unknown", `${base}\nlimits: { budget: { limitUsd: 1, window: day, count: approximate } }\n`, "limits.budget.count"],
  ["onSoft without softAt", `${base}\nlimits: { budget: { limitUsd: 1, window: day, onSoft: smart } }\n`, "limits.budget.softAt"],
  ["gateway key names a missing route", `${base}\ngateway: { keys: [ { key: team-a-key, tenant: a, routes: [default, dumb] } ] }\n`, "gateway.keys[0].routes[1]"],
  ["gateway duplicate key", `${base}\ngateway: { keys: [ { key: same-key, tenant: a }, { key: same-key, tenant: b } ] }\n`, "gateway.keys[1].key"],
  ["gateway key without tenant", `${base}\ngateway: { keys: [ { key: k1 } ] }\n`, "gateway.keys[0].tenant"],
  ["gateway port not an integer", `${base}\ngateway: { port: eighty }\n`, "gateway.port"],
  ["unknown environment", `${base}\nenvironments: { dev: {} }\n`, "environments", "known: dev"],
  ["environment overlay breaks a reference", `${base}\nenvironments: { dev: { routes: { default: { fallback: [nope] } } } }\n`, "routes.default.fallback[0]"],
  ["YAML syntax error", "version: 1\nproviders: { openai: [ }\n", ""]
]

describe("SwitchboardConfig.load refuses broken files", () => {
  for (const [name, text, path, contains] of broken) {
    it.effect(`${name} → ${path || "(parse error)"}`, () =>
      Effect.gen(function*() {
        const environment = name.startsWith("unknown environment") ? "qa" : name.startsWith("environment overlay") ? "dev" : undefined
        const error = yield* errorsOf(write(text), { environment })
        expect(error._tag).toBe("SwitchboardConfigError")
        expect(error.path).toBe(path)
        if (contains !== undefined) expect(error.message).toContain(contains)
        for (const secret of ["sk-test-secret-1234", "gsk-secret-5678", "sk-ant-secret-9999"]) {
          expect(error.summary).not.toContain(secret)
          expect(error.message).not.toContain(secret)
        }
      }))
  }

  it.effect("a secret with the wrong type is reported without its value", () =>
    Effect.gen(function*() {
      const error = yield* errorsOf(write(base.replace(`"sk-test-secret-1234"`, "123456789")))
      expect(error.path).toBe("providers.openai.apiKey")
      expect(error.summary).not.toContain("123456789")
    }))
})

describe("SwitchboardConfig.layerPrompts", () => {
  it.effect("the file's prompt templates render through a PromptRegistry, paths relative to the file", () =>
    Effect.gen(function*() {
      writeFileSync(
        join(dir, "summarise.yaml"),
        [
          "id: summarise",
          "version: 1",
          "variables: { text: string }",
          "messages:",
          "  - role: user",
          "    content: \"Summarise: {{text}}\""
        ].join("\n")
      )
      const file = write(`${base}\nprompts: [ ./summarise.yaml ]\n`)
      const request = yield* PromptRegistry.render("summarise", { text: "the tides" }).pipe(
        Effect.provide(SwitchboardConfig.layerPrompts(file, { env: {} }))
      )
      expect(request.messages).toEqual([{ role: "user", content: "Summarise: the tides" }])
      expect(request.metadata?.prompt).toEqual({ id: "summarise", version: "1" })
    }))
})
