/**
 * A registry of versioned prompt templates: render a prompt by id, at its
 * latest version or a pinned one, without threading template values through
 * a program. Templates are built in code with `PromptTemplate.make`, or
 * loaded from YAML / JSON files with {@link fromFile} (the config package
 * points at such files).
 *
 * A template file holds one template, a list of them, or `{ templates: [...] }`:
 *
 * ```yaml
 * templates:
 *   - id: summarize
 *     version: "2"
 *     variables: { text: string, tone: string?, maxWords: integer? }
 *     defaults: { tone: neutral }
 *     system: "You summarize in a {{tone}} tone."
 *     messages:
 *       - role: user
 *         content: "Summarize{{#maxWords}} in at most {{maxWords}} words{{/maxWords}}: {{text}}"
 *     request: { model: gpt-4o-mini, temperature: 0.2 }
 * ```
 *
 * Variable types in files: `string`, `number`, `integer`, `boolean`,
 * `string[]`, `number[]`, each optional with a trailing `?`.
 *
 * @since 0.1.0
 */
import { Context, Effect, Layer, Result, Schema } from "effect"
import * as Fs from "node:fs/promises"
import type { LlmRequest } from "../LlmRequest.ts"
import { LlmRequest as LlmRequestSchema, Message } from "../LlmRequest.ts"
import { issuesOf } from "../SwitchboardConfigError.ts"
import * as PromptTemplate from "./PromptTemplate.ts"

const { PromptTemplateError } = PromptTemplate

/**
 * The registry service.
 *
 * @since 0.1.0
 * @category services
 */
export class PromptRegistry extends Context.Service<PromptRegistry, {
  /** The template `id` at `version`, or its latest version. */
  readonly get: (
    id: string,
    options?: { readonly version?: string | undefined } | undefined
  ) => Effect.Effect<PromptTemplate.PromptTemplate, PromptTemplate.PromptTemplateError>
  /** Renders the template `id` (latest version unless `version` pins one). */
  readonly render: (
    id: string,
    vars: unknown,
    options?: { readonly version?: string | undefined } | undefined
  ) => Effect.Effect<LlmRequest, PromptTemplate.PromptTemplateError>
  /** Every template, by id then version. */
  readonly templates: ReadonlyArray<PromptTemplate.PromptTemplate>
}>()("@switchboard/core/PromptRegistry") {}

/**
 * Builds a registry from templates. Two templates with the same id and
 * version are refused.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  templates: ReadonlyArray<PromptTemplate.PromptTemplate>
): Effect.Effect<PromptRegistry["Service"], PromptTemplate.PromptTemplateError> =>
  Effect.suspend(() => {
    const byId = new Map<string, Array<PromptTemplate.PromptTemplate>>()
    for (const template of templates) {
      const versions = byId.get(template.id) ?? []
      if (versions.some((t) => t.version === template.version)) {
        return Effect.fail(
          new PromptTemplateError({
            id: template.id,
            version: template.version,
            field: "version",
            message: `template ${template.id}@${template.version} is registered twice`
          })
        )
      }
      versions.push(template)
      byId.set(template.id, versions)
    }
    for (const versions of byId.values()) versions.sort((a, b) => PromptTemplate.compareVersions(a.version, b.version))
    const get = (id: string, options?: { readonly version?: string | undefined } | undefined) => {
      const versions = byId.get(id)
      if (versions === undefined || versions.length === 0) {
        return Effect.fail(
          new PromptTemplateError({
            id,
            message: `no template ${JSON.stringify(id)} (known: ${[...byId.keys()].join(", ") || "none"})`
          })
        )
      }
      const version = options?.version
      const found = version === undefined ? versions[versions.length - 1] : versions.find((t) => t.version === version)
      return found === undefined
        ? Effect.fail(
          new PromptTemplateError({
            id,
            version: version!,
            field: "version",
            message: `template ${id} has no version ${version} (known: ${versions.map((t) => t.version).join(", ")})`
          })
        )
        : Effect.succeed(found)
    }
    return Effect.succeed(PromptRegistry.of({
      get,
      render: (id, vars, options) =>
        Effect.flatMap(get(id, options), (template) => PromptTemplate.render(template, vars as never)),
      templates: [...byId.values()].flat()
    }))
  })

/**
 * Provides a {@link PromptRegistry} of `templates`: templates already built,
 * their `PromptTemplate.make` options (checked here), or effects building
 * them (`PromptTemplate.make(...)`, {@link fromFile}). Any template that does
 * not check fails the layer.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  templates: ReadonlyArray<
    | PromptTemplate.PromptTemplate
    | PromptTemplate.Options<PromptTemplate.Variables>
    | Effect.Effect<PromptTemplate.PromptTemplate | ReadonlyArray<PromptTemplate.PromptTemplate>, PromptTemplate.PromptTemplateError>
  >
): Layer.Layer<PromptRegistry, PromptTemplate.PromptTemplateError> =>
  Layer.effect(
    PromptRegistry,
    Effect.flatMap(
      Effect.forEach(templates, (entry) =>
        Effect.isEffect(entry)
          ? Effect.map(entry, (built) => PromptTemplate.isPromptTemplate(built) ? [built] : built)
          : PromptTemplate.isPromptTemplate(entry)
          ? Effect.succeed([entry])
          : Effect.map(PromptTemplate.make(entry), (built) => [built])),
      (lists) => make(lists.flat())
    )
  )

/**
 * Renders the template `id` of the registry in context, at its latest
 * version unless `version` pins one.
 *
 * @since 0.1.0
 * @category accessors
 */
export const render = (
  id: string,
  vars: unknown,
  options?: { readonly version?: string | undefined } | undefined
): Effect.Effect<LlmRequest, PromptTemplate.PromptTemplateError, PromptRegistry> =>
  PromptRegistry.use((registry) => registry.render(id, vars, options))

// ---------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------

const VariableType = Schema.String.check(
  Schema.isPattern(/^(?:string|number|integer|boolean|string\[\]|number\[\])\??$/, {
    message: "must be string, number, integer, boolean, string[] or number[], optionally followed by ?"
  })
)

const { messages: _messages, system: _system, ...requestFields } = LlmRequestSchema.fields

/**
 * A template as written in a YAML or JSON file.
 *
 * @since 0.1.0
 * @category models
 */
export const TemplateFile = Schema.Struct({
  id: Schema.String.check(Schema.isNonEmpty()),
  version: Schema.Union([Schema.String, Schema.Number]),
  description: Schema.optional(Schema.String),
  variables: Schema.optional(Schema.Record(Schema.String, VariableType)),
  defaults: Schema.optional(Schema.Record(Schema.String, Schema.Unknown)),
  system: Schema.optional(Schema.String),
  messages: Schema.Array(Message),
  request: Schema.optional(Schema.Struct(requestFields))
})
/** @since 0.1.0 @category models */
export type TemplateFile = typeof TemplateFile.Type

const TemplateList = Schema.Array(TemplateFile)
const TemplatesFile = Schema.Struct({ templates: TemplateList })

const schemaOf = (type: string): Schema.Top => {
  const optional = type.endsWith("?")
  const base = optional ? type.slice(0, -1) : type
  const schema: Schema.Top = base === "string"
    ? Schema.String
    : base === "number"
    ? Schema.Finite
    : base === "integer"
    ? Schema.Int
    : base === "boolean"
    ? Schema.Boolean
    : base === "string[]"
    ? Schema.Array(Schema.String)
    : Schema.Array(Schema.Finite)
  return optional ? Schema.optional(schema) : schema
}

/**
 * Builds the templates a parsed file holds (one template, a list, or
 * `{ templates }`); `source` names the file in errors.
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromData = (
  data: unknown,
  source = "templates"
): Effect.Effect<ReadonlyArray<PromptTemplate.PromptTemplate>, PromptTemplate.PromptTemplateError> => {
  // The shape is chosen first, so an error names the field of the shape the file uses.
  const shape = Array.isArray(data)
    ? TemplateList
    : typeof data === "object" && data !== null && "templates" in data
    ? TemplatesFile
    : TemplateFile
  const decoded = Schema.decodeUnknownResult(shape as Schema.Codec<unknown>)(data, {
    errors: "all",
    onExcessProperty: "error"
  })
  if (Result.isFailure(decoded)) {
    const issues = issuesOf(source, decoded.failure.issue)
    return Effect.fail(
      new PromptTemplateError({
        id: source,
        field: issues[0]?.path ?? source,
        message: issues.map((issue) => `${issue.path}: ${issue.message}`).join("; ")
      })
    )
  }
  const contents = decoded.success
  const list = (shape === TemplateList
    ? contents
    : shape === TemplatesFile
    ? (contents as typeof TemplatesFile.Type).templates
    : [contents]) as ReadonlyArray<TemplateFile>
  return Effect.forEach(list, (file) => {
    const fields: Record<string, Schema.Top> = {}
    for (const [name, type] of Object.entries(file.variables ?? {})) fields[name] = schemaOf(type)
    return PromptTemplate.make({
      id: file.id,
      version: String(file.version),
      variables: Schema.Struct(fields) as unknown as PromptTemplate.Variables,
      ...(file.defaults !== undefined ? { defaults: file.defaults } : {}),
      ...(file.system !== undefined ? { system: file.system } : {}),
      ...(file.description !== undefined ? { description: file.description } : {}),
      messages: file.messages.map((message) => ({
        role: message.role,
        content: typeof message.content === "string"
          ? message.content
          : message.content.flatMap((part) => part.type === "text" ? [part] : [])
      })),
      ...(file.request !== undefined ? { request: file.request } : {})
    })
  })
}

/**
 * A parser for template files' text.
 *
 * @since 0.1.0
 * @category models
 */
export type Parser = (text: string) => unknown

const yamlParser = (path: string): Effect.Effect<Parser, PromptTemplate.PromptTemplateError> =>
  Effect.tryPromise({
    try: async () => {
      const specifier = "yaml"
      const module = await import(specifier) as { readonly parse: Parser }
      return module.parse
    },
    catch: () =>
      new PromptTemplateError({
        id: path,
        message: `${path}: reading YAML needs the "yaml" package (npm install yaml), or pass { parse }`
      })
  })

/**
 * Loads the templates of a YAML (`.yaml`, `.yml`) or JSON file. YAML is read
 * by the `yaml` package, or by `parse` when given. A file that cannot be
 * read, parsed or decoded fails with `PromptTemplateError` naming the file and
 * the field.
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromFile = (
  path: string,
  options?: { readonly parse?: Parser | undefined } | undefined
): Effect.Effect<ReadonlyArray<PromptTemplate.PromptTemplate>, PromptTemplate.PromptTemplateError> =>
  Effect.gen(function*() {
    const text = yield* Effect.tryPromise({
      try: () => Fs.readFile(path, "utf8"),
      catch: (cause) =>
        new PromptTemplateError({
          id: path,
          message: `${path}: cannot be read (${(cause as { code?: string }).code ?? String(cause)})`
        })
    })
    const parse: Parser = options?.parse ??
      (/\.ya?ml$/i.test(path) ? yield* yamlParser(path) : (text) => JSON.parse(text))
    const data = yield* Effect.try({
      try: () => parse(text),
      catch: (cause) =>
        new PromptTemplateError({
          id: path,
          message: `${path}: does not parse: ${cause instanceof Error ? cause.message : String(cause)}`
        })
    })
    return yield* fromData(data, path)
  })

/**
 * A {@link PromptRegistry} of the templates in `paths` (YAML or JSON files).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerFiles = (
  paths: ReadonlyArray<string>,
  options?: { readonly parse?: Parser | undefined } | undefined
): Layer.Layer<PromptRegistry, PromptTemplate.PromptTemplateError> =>
  layer(paths.map((path) => fromFile(path, options)))
