/**
 * Build-time mistakes: a combinator option, a config file field or a CLI
 * flag that cannot work. Every combinator decodes its options with a Schema
 * when its layer is built, so a bad option fails the layer (not the first
 * call) with a `SwitchboardConfigError` naming it, e.g.
 * `Budget.limitUsd: expected a finite number ≥ 0, got NaN`. The config file
 * loader reuses the same Schemas and reports every problem at once in
 * `issues`.
 *
 * @since 0.1.0
 */
import { Effect, Result, Schema, SchemaIssue } from "effect"

/**
 * One problem: where (`Budget.limitUsd`, `routes.default.fallback[1]`) and what.
 *
 * @since 0.1.0
 * @category models
 */
export interface ConfigIssue {
  readonly path: string
  readonly message: string
}

/**
 * A bad option or config field. `path` and `message` name the first problem;
 * `issues` holds every problem found, so a user fixes them in one pass.
 *
 * @example
 * ```ts
 * import { SwitchboardConfigError } from "@switchboard/core"
 *
 * const error = new SwitchboardConfigError.SwitchboardConfigError({
 *   path: "Budget.limitUsd",
 *   message: "expected a finite number ≥ 0, got NaN"
 * })
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class SwitchboardConfigError extends Schema.TaggedError<SwitchboardConfigError>()(
  "SwitchboardConfigError",
  {
    path: Schema.String,
    message: Schema.String,
    issues: Schema.optional(Schema.Array(Schema.Struct({ path: Schema.String, message: Schema.String })))
  }
) {
  /** Every problem, as `path: message` lines. */
  get summary(): string {
    const issues = this.issues ?? [{ path: this.path, message: this.message }]
    return issues.map((issue) => issue.path === "" ? issue.message : `${issue.path}: ${issue.message}`).join("\n")
  }
}

/**
 * True for a {@link SwitchboardConfigError}.
 *
 * @since 0.1.0
 * @category guards
 */
export const isSwitchboardConfigError = (u: unknown): u is SwitchboardConfigError =>
  typeof u === "object" && u !== null && "_tag" in u && u._tag === "SwitchboardConfigError"

/**
 * Builds the error for a list of problems (at least one).
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromIssues = (issues: ReadonlyArray<ConfigIssue>): SwitchboardConfigError => {
  const first = issues[0] ?? { path: "", message: "invalid configuration" }
  return new SwitchboardConfigError({
    path: first.path,
    message: issues.length <= 1 ? first.message : `${first.message} (and ${issues.length - 1} more${more(issues.slice(1))})`,
    issues
  })
}

const more = (rest: ReadonlyArray<ConfigIssue>): string => {
  const paths = [...new Set(rest.map((issue) => issue.path).filter((path) => path !== ""))]
  return paths.length === 0 ? "" : `: ${paths.join(", ")}`
}

/**
 * Joins a base path and a Schema issue path the way users write them:
 * `Budget.limitUsd`, `routes.default.fallback[1]`.
 *
 * @since 0.1.0
 * @category utils
 */
export const joinPath = (base: string, path: ReadonlyArray<PropertyKey>): string => {
  let out = base
  for (const key of path) {
    if (typeof key === "number") out += `[${key}]`
    else out += out === "" ? String(key) : `.${String(key)}`
  }
  return out
}

const formatter = SchemaIssue.makeFormatterStandardSchemaV1()

const lowerFirst = (text: string): string => text.length === 0 ? text : text[0]!.toLowerCase() + text.slice(1)

/**
 * Turns a Schema issue into config issues under `base`.
 *
 * @since 0.1.0
 * @category utils
 */
export const issuesOf = (base: string, issue: SchemaIssue.Issue): ReadonlyArray<ConfigIssue> =>
  formatter(issue).issues.map((entry) => ({
    path: joinPath(base, (entry.path ?? []).map((key) => typeof key === "object" ? key.key : key)),
    message: lowerFirst(entry.message)
  }))

/**
 * Decodes `options` with `schema`, synchronously: every problem is reported,
 * unknown keys included, under `base` (the module name, e.g. `"Budget"`).
 *
 * @since 0.1.0
 * @category decoding
 */
export const decodeSync = <S extends Schema.Top & { readonly DecodingServices: never }>(
  base: string,
  schema: S,
  options: unknown
): Result.Result<S["Type"], SwitchboardConfigError> => {
  const result = Schema.decodeUnknownResult(schema)(options, { errors: "all", onExcessProperty: "error" })
  return Result.isSuccess(result)
    ? Result.succeed(result.success)
    : Result.fail(fromIssues(issuesOf(base, result.failure.issue)))
}

/**
 * {@link decodeSync} as an `Effect`: what a combinator's `make` calls first,
 * so a bad option fails the layer at build.
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { SwitchboardConfigError } from "@switchboard/core"
 *
 * const Options = Schema.Struct({ times: Schema.Int.check(Schema.isGreaterThanOrEqualTo(0)) })
 * const program = SwitchboardConfigError.decode("Retry", Options, { times: -1 })
 * // fails with SwitchboardConfigError { path: "Retry.times", ... }
 * ```
 *
 * @since 0.1.0
 * @category decoding
 */
export const decode = <S extends Schema.Top & { readonly DecodingServices: never }>(
  base: string,
  schema: S,
  options: unknown
): Effect.Effect<S["Type"], SwitchboardConfigError> => Effect.fromResult(decodeSync(base, schema, options))
