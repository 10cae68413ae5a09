import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Schema } from "effect"
import * as Fs from "node:fs"
import { createRequire } from "node:module"
import * as Os from "node:os"
import * as Path from "node:path"
import { PromptRegistry, PromptTemplate } from "../src/index.ts"

// `yaml` is a dependency of @switchboard/config; core reads YAML with it when installed, or with `parse`.
const yaml = createRequire(new URL("../../config/package.json", import.meta.url))("yaml") as {
  readonly parse: (text: string) => unknown
}

const version = (v: string, text: string) =>
  PromptTemplate.make({
    id: "greet",
    version: v,
    variables: Schema.Struct({ name: Schema.String }),
    messages: [{ role: "user", content: text }]
  })

const registry = PromptRegistry.layer([version("1.9", "v1.9 {{name}}"), version("1.10", "v1.10 {{name}}"), version("1.2", "v1.2 {{name}}")])

const tmp = (name: string, text: string) => {
  const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "switchboard-prompts-"))
  const file = Path.join(dir, name)
  Fs.writeFileSync(file, text)
  return file
}

describe("PromptRegistry", () => {
  it.effect("renders the latest version by default and a pinned one on request", () =>
    Effect.gen(function*() {
      const latest = yield* PromptRegistry.render("greet", { name: "Ada" })
      assert.deepStrictEqual(latest.messages, [{ role: "user", content: "v1.10 Ada" }])
      assert.deepStrictEqual(latest.metadata?.prompt, { id: "greet", version: "1.10" })
      const pinned = yield* PromptRegistry.render("greet", { name: "Ada" }, { version: "1.2" })
      assert.deepStrictEqual(pinned.messages, [{ role: "user", content: "v1.2 Ada" }])
      assert.deepStrictEqual(pinned.metadata?.prompt, { id: "greet", version: "1.2" })
    }).pipe(Effect.provide(registry)))

  it.effect("an unknown id or version fails naming what exists", () =>
    Effect.gen(function*() {
      const noId = yield* Effect.flip(PromptRegistry.render("nope", {}))
      assert.include(noId.message, "known: greet")
      const noVersion = yield* Effect.flip(PromptRegistry.render("greet", { name: "x" }, { version: "7" }))
      assert.strictEqual(noVersion.field, "version")
      assert.include(noVersion.message, "1.2, 1.9, 1.10")
    }).pipe(Effect.provide(registry)))

  it.effect("variables are checked as in PromptTemplate.render", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(PromptRegistry.render("greet", { name: 3 }))
      assert.strictEqual(error.variable, "name")
    }).pipe(Effect.provide(registry)))

  it.effect("takes template options as they are, checking them when the layer is built", () =>
    Effect.gen(function*() {
      const options = {
        id: "plain",
        version: "1",
        variables: Schema.Struct({ who: Schema.String }),
        messages: [{ role: "user" as const, content: "hi {{who}}" }]
      }
      const request = yield* PromptRegistry.render("plain", { who: "Bo" }).pipe(Effect.provide(PromptRegistry.layer([options])))
      assert.deepStrictEqual(request.messages, [{ role: "user", content: "hi Bo" }])
      const bad = yield* Effect.flip(Layer.build(PromptRegistry.layer([{ ...options, messages: [{ role: "user" as const, content: "{{whom}}" }] }])))
      assert.strictEqual(bad.variable, "whom")
    }))

  it.effect("the same id and version twice fails the layer", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Layer.build(PromptRegistry.layer([version("1", "a"), version("1", "b")])))
      assert.strictEqual(error._tag, "PromptTemplateError")
      assert.include(error.message, "greet@1 is registered twice")
    }))

  it.effect("loads templates from a YAML file: types, optional variables, defaults and request fields", () =>
    Effect.gen(function*() {
      const file = tmp(
        "prompts.yaml",
        [
          "templates:",
          "  - id: summarize",
          "    version: 2",
          "    variables: { text: string, tone: string?, maxWords: integer? }",
          "    defaults: { tone: neutral }",
          "    system: \"You summarize in a {{tone}} tone.\"",
          "    messages:",
          "      - role: user",
          "        content: \"Summarize{{#maxWords}} in at most {{maxWords}} words{{/maxWords}}: {{text}}\"",
          "    request: { model: gpt-4o-mini, temperature: 0.2 }",
          "  - id: summarize",
          "    version: 1",
          "    variables: { text: string }",
          "    messages: [{ role: user, content: \"old {{text}}\" }]"
        ].join("\n")
      )
      const request = yield* PromptRegistry.render("summarize", { text: "the text", maxWords: 10 }).pipe(
        Effect.provide(PromptRegistry.layerFiles([file], { parse: yaml.parse }))
      )
      assert.strictEqual(request.system, "You summarize in a neutral tone.")
      assert.deepStrictEqual(request.messages, [{ role: "user", content: "Summarize in at most 10 words: the text" }])
      assert.strictEqual(request.model, "gpt-4o-mini")
      assert.deepStrictEqual(request.metadata?.prompt, { id: "summarize", version: "2" })
      const bad = yield* Effect.flip(
        PromptRegistry.render("summarize", { text: "x", maxWords: "ten" }).pipe(
          Effect.provide(PromptRegistry.layerFiles([file], { parse: yaml.parse }))
        )
      )
      assert.strictEqual(bad.variable, "maxWords")
    }))

  it.effect("loads a JSON file with no parser given", () =>
    Effect.gen(function*() {
      const file = tmp("one.json", JSON.stringify({ id: "j", version: "1", variables: { x: "number" }, messages: [{ role: "user", content: "x={{x}}" }] }))
      const [template] = yield* PromptRegistry.fromFile(file)
      const request = yield* PromptTemplate.render(template!, { x: 4 })
      assert.deepStrictEqual(request.messages, [{ role: "user", content: "x=4" }])
    }))

  it.effect("a bad file fails naming the file and the field", () =>
    Effect.gen(function*() {
      const badType = tmp("bad.json", JSON.stringify({ id: "j", version: "1", variables: { x: "date" }, messages: [] }))
      const typeError = yield* Effect.flip(PromptRegistry.fromFile(badType))
      assert.strictEqual(typeError.field, `${badType}.variables.x`)
      const unknownPlaceholder = tmp("ph.json", JSON.stringify({ id: "j", version: "1", messages: [{ role: "user", content: "{{y}}" }] }))
      const placeholderError = yield* Effect.flip(PromptRegistry.fromFile(unknownPlaceholder))
      assert.strictEqual(placeholderError.variable, "y")
      const missing = yield* Effect.flip(PromptRegistry.fromFile(Path.join(Os.tmpdir(), "no-such-file.yaml")))
      assert.include(missing.message, "cannot be read (ENOENT)")
      const broken = tmp("broken.json", "{ not json")
      assert.include((yield* Effect.flip(PromptRegistry.fromFile(broken))).message, "does not parse")
    }))
})
