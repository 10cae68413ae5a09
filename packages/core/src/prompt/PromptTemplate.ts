/**
 * Versioned prompt templates: a system prompt and messages written with
 * Mustache placeholders, variables described by an `effect/Schema`, and
 * request fields (model, temperature, …) that travel with the prompt.
 *
 * Templates use the logic-less subset of Mustache, rendered by the
 * maintained `mustache` engine with HTML escaping off:
 *
 * - `{{name}}` (or `{{{name}}}` / `{{& name}}`) inserts a variable,
 * - `{{#name}}…{{/name}}` renders its body when the variable is set and
 *   non-empty (once per element for a list),
 * - `{{^name}}…{{/name}}` renders its body when it is unset or empty,
 * - `{{! comment }}` is dropped.
 *
 * Nothing in a template runs code: partials (`{{> x}}`) are refused, a
 * placeholder must name a variable of the Schema (checked once, at
 * {@link make}, so a typo fails at startup, not in production), and variables
 * are decoded by the Schema before rendering, so a function can never reach
 * the engine. The rendered request carries `metadata.prompt = { id, version }`,
 * which the `CostLedger` and spans record.
 *
 * @since 0.1.0
 */
import { Effect, Result, Schema, SchemaIssue } from "effect"
import Mustache from "mustache"
import type { LlmRequest, Message, Role, TextPart } from "../LlmRequest.ts"

/**
 * A template could not be built or rendered: `variable` names the variable
 * (or `field` the template field) at fault, `message` says what was expected.
 *
 * @since 0.1.0
 * @category errors
 */
export class PromptTemplateError extends Schema.TaggedError<PromptTemplateError>()("PromptTemplateError", {
  id: Schema.String,
  version: Schema.optional(Schema.String),
  variable: Schema.optional(Schema.String),
  field: Schema.optional(Schema.String),
  message: Schema.String
}) {}

/**
 * The variables Schema of a template: a struct whose fields are the
 * variables, decoded without services.
 *
 * @since 0.1.0
 * @category models
 */
export type Variables = Schema.Top & {
  readonly fields: Schema.Struct.Fields
  readonly DecodingServices: never
}

/**
 * One templated message: its role and its content, a template string or text
 * parts whose `text` is a template (a part may carry `cache: true`).
 *
 * @since 0.1.0
 * @category models
 */
export interface MessageTemplate {
  readonly role: Role
  readonly content: string | ReadonlyArray<TextPart>
}

/**
 * Request fields a template sets (everything but `messages` and `system`).
 *
 * @since 0.1.0
 * @category models
 */
export type RequestFields = Omit<Partial<LlmRequest>, "messages" | "system">

/**
 * What {@link make} takes.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options<V extends Variables> {
  readonly id: string
  readonly version: string
  readonly variables: V
  /** Values used for variables the caller leaves out (before decoding). */
  readonly defaults?: Partial<V["Encoded"]> | undefined
  readonly system?: string | undefined
  readonly messages: ReadonlyArray<MessageTemplate>
  readonly request?: RequestFields | undefined
  readonly description?: string | undefined
}

const TypeId = "~@switchboard/core/PromptTemplate"

/**
 * A checked template, ready to {@link render}.
 *
 * @since 0.1.0
 * @category models
 */
export interface PromptTemplate<V extends Variables = Variables> extends Options<V> {
  readonly [TypeId]: typeof TypeId
  /** Every variable a placeholder names. */
  readonly placeholders: ReadonlySet<string>
}

/**
 * True for a value built by {@link make}.
 *
 * @since 0.1.0
 * @category guards
 */
export const isPromptTemplate = (u: unknown): u is PromptTemplate =>
  typeof u === "object" && u !== null && TypeId in u

type Token = ReadonlyArray<unknown>

const identifier = /^[A-Za-z_][A-Za-z0-9_]*$/

/** Every placeholder of a template text, or why the text is refused. */
const placeholdersOf = (text: string, names: Set<string>): Result.Result<void, string> => {
  let tokens: ReadonlyArray<Token>
  try {
    tokens = Mustache.parse(text) as ReadonlyArray<Token>
  } catch (cause) {
    return Result.fail(`does not parse: ${cause instanceof Error ? cause.message : String(cause)}`)
  }
  // Inside a list section, `{{.}}` is the current element.
  const walk = (list: ReadonlyArray<Token>, inSection: boolean): Result.Result<void, string> => {
    for (const token of list) {
      const kind = token[0] as string
      const name = token[1] as string
      switch (kind) {
        case "text":
        case "!":
          break
        case ">":
          return Result.fail(`partials are not supported ({{> ${name}}})`)
        case "name":
        case "&":
        case "#":
        case "^": {
          if (name === "." && inSection) break
          if (!identifier.test(name)) {
            return Result.fail(`{{${name}}} is not a variable name (letters, digits and _ only)`)
          }
          names.add(name)
          if (kind === "#" || kind === "^") {
            const inner = walk(token[4] as ReadonlyArray<Token>, true)
            if (Result.isFailure(inner)) return inner
          }
          break
        }
        default:
          return Result.fail(`unsupported tag {{${kind}${name}}}`)
      }
    }
    return Result.void
  }
  return walk(tokens, false)
}

const textsOf = (options: Options<Variables>): ReadonlyArray<{ readonly field: string; readonly text: string }> => {
  const texts: Array<{ field: string; text: string }> = []
  if (options.system !== undefined) texts.push({ field: "system", text: options.system })
  options.messages.forEach((message, i) => {
    if (typeof message.content === "string") texts.push({ field: `messages[${i}].content`, text: message.content })
    else message.content.forEach((part, j) => texts.push({ field: `messages[${i}].content[${j}].text`, text: part.text }))
  })
  return texts
}

/**
 * Checks and builds a template: every placeholder must name a field of the
 * `variables` Schema, partials and unknown tags are refused, and `id` and
 * `version` must be non-empty.
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { PromptTemplate } from "@switchboard/core"
 *
 * const summarize = PromptTemplate.make({
 *   id: "summarize",
 *   version: "1",
 *   variables: Schema.Struct({ text: Schema.String, tone: Schema.optional(Schema.String) }),
 *   system: "You summarize{{#tone}} in a {{tone}} tone{{/tone}}.",
 *   messages: [{ role: "user", content: "{{text}}" }],
 *   request: { temperature: 0.2 }
 * })
 * const request = Effect.flatMap(summarize, (t) => PromptTemplate.render(t, { text: "…" }))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <V extends Variables>(options: Options<V>): Effect.Effect<PromptTemplate<V>, PromptTemplateError> =>
  Effect.suspend(() => {
    const fail = (message: string, extra: { readonly field?: string; readonly variable?: string } = {}) =>
      Effect.fail(
        new PromptTemplateError({
          id: typeof options.id === "string" ? options.id : "",
          ...(typeof options.version === "string" ? { version: options.version } : {}),
          ...extra,
          message
        })
      )
    if (typeof options.id !== "string" || options.id.length === 0) return fail("id: must be a non-empty string", { field: "id" })
    if (typeof options.version !== "string" || options.version.length === 0) {
      return fail("version: must be a non-empty string", { field: "version" })
    }
    if (!Array.isArray(options.messages)) return fail("messages: must be an array", { field: "messages" })
    const fields = options.variables.fields
    const placeholders = new Set<string>()
    for (const { field, text } of textsOf(options as Options<Variables>)) {
      const names = new Set<string>()
      const checked = placeholdersOf(text, names)
      if (Result.isFailure(checked)) return fail(`${field}: ${checked.failure}`, { field })
      for (const name of names) {
        if (!Object.hasOwn(fields, name)) {
          return fail(
            `${field}: the placeholder {{${name}}} names no variable of the Schema (known: ${
              Object.keys(fields).join(", ") || "none"
            })`,
            { field, variable: name }
          )
        }
        placeholders.add(name)
      }
    }
    return Effect.succeed({ ...options, [TypeId]: TypeId, placeholders } as PromptTemplate<V>)
  })

const formatter = SchemaIssue.makeFormatterStandardSchemaV1()

const render1 = (text: string, view: Record<string, unknown>): string =>
  new Mustache.Writer().render(text, view, {}, { escape: (value: string) => value })

/** A view with nothing reachable but own data: no prototype lookups from templates. */
const viewOf = (value: unknown): unknown => {
  if (Array.isArray(value)) return value.map(viewOf)
  if (typeof value === "function") return undefined
  // A number is set even when it is 0, so `{{#count}}` renders for 0 (Mustache alone would hide it).
  if (typeof value === "number") return String(value)
  if (typeof value !== "object" || value === null) return value
  if (value instanceof Date) return value.toISOString()
  const out: Record<string, unknown> = Object.create(null)
  for (const [key, field] of Object.entries(value)) out[key] = viewOf(field)
  return out
}

/**
 * Renders a template: fills `defaults` into `vars`, decodes them with the
 * Schema (a failure names the first bad variable and what was expected),
 * renders the system prompt and messages, and returns the request with the
 * template's request fields and `metadata.prompt = { id, version }`.
 *
 * @since 0.1.0
 * @category rendering
 */
export const render: {
  <V extends Variables>(template: PromptTemplate<V>, vars: V["Encoded"]): Effect.Effect<LlmRequest, PromptTemplateError>
} = Effect.fnUntraced(function*<V extends Variables>(template: PromptTemplate<V>, vars: V["Encoded"]) {
  const { id, version } = template
  const given = typeof vars === "object" && vars !== null ? vars : {}
  const input: Record<string, unknown> = { ...template.defaults }
  for (const [key, value] of Object.entries(given)) if (value !== undefined) input[key] = value
  const decoded = Schema.decodeUnknownResult(template.variables)(input, { errors: "all", onExcessProperty: "error" })
  if (Result.isFailure(decoded)) {
    const issues = formatter(decoded.failure.issue).issues
    const first = issues[0]
    const path = (first?.path ?? []).map((key) => String(typeof key === "object" ? key.key : key))
    const variable = path[0]
    const described = issues.map((issue) => {
      const at = (issue.path ?? []).map((key) => String(typeof key === "object" ? key.key : key)).join(".")
      return at.length > 0 ? `${at}: ${issue.message}` : issue.message
    })
    return yield* new PromptTemplateError({
      id,
      version,
      ...(variable !== undefined ? { variable } : {}),
      message: `variables of ${id}@${version} do not decode: ${described.join("; ")}`
    })
  }
  const view = viewOf(decoded.success) as Record<string, unknown>
  const messages: Array<Message> = template.messages.map((message) => ({
    role: message.role,
    content: typeof message.content === "string"
      ? render1(message.content, view)
      : message.content.map((part) => ({ ...part, text: render1(part.text, view) }))
  }))
  const fields = template.request ?? {}
  const request: Record<string, unknown> = { ...fields, messages }
  if (template.system !== undefined) request.system = render1(template.system, view)
  request.metadata = { ...fields.metadata, prompt: { id, version } }
  return request as LlmRequest
})

/**
 * Compares two version strings segment by segment, numerically where both
 * segments are numbers (`"1.10"` is after `"1.9"`), else as text.
 *
 * @since 0.1.0
 * @category ordering
 */
export const compareVersions = (a: string, b: string): number => {
  const left = a.split(/[.\-_]/)
  const right = b.split(/[.\-_]/)
  for (let i = 0; i < Math.max(left.length, right.length); i++) {
    const x = left[i]
    const y = right[i]
    if (x === undefined) return -1
    if (y === undefined) return 1
    const nx = /^\d+$/.test(x) ? Number(x) : Number.NaN
    const ny = /^\d+$/.test(y) ? Number(y) : Number.NaN
    if (!Number.isNaN(nx) && !Number.isNaN(ny)) {
      if (nx !== ny) return nx < ny ? -1 : 1
    } else if (x !== y) return x < y ? -1 : 1
  }
  return 0
}

/**
 * The variable names a template's placeholders use, sorted.
 *
 * @since 0.1.0
 * @category getters
 */
export const placeholders = (template: PromptTemplate): ReadonlyArray<string> => [...template.placeholders].sort()
