/**
 * From a path to a checked config: read, parse, pick the environment,
 * expand variables, decode the shape, decode every block with its owner's
 * Schema, cross-check names. All problems are collected and returned
 * together, each with its path and, where the parser knows it, its line.
 *
 * @internal
 */
import { SwitchboardConfigError } from "@switchboard/core"
import { Effect, Redacted, Result, Schema } from "effect"
import { createHash } from "node:crypto"
import { readFile } from "node:fs/promises"
import { dirname, extname, resolve } from "node:path"
import { type Descriptor, loadDescriptor, packageFor } from "./descriptors.ts"
import { blockSchemas } from "./blocks.ts"
import { type File, FallbackRoute, FileShape, type Model, ModelRoute, ProviderTypes, type Route, RouterRoute } from "./format.ts"
import { deepMerge, expand, isRecord, parse, type Source } from "./source.ts"
import { crossCheck } from "./validate.ts"

type Issue = SwitchboardConfigError.ConfigIssue & { readonly at: ReadonlyArray<PropertyKey> }

/** A provider entry, its client options decoded by its package's descriptor. */
export interface ProviderEntry {
  readonly name: string
  readonly type: (typeof ProviderTypes)[number]
  readonly options: unknown
  readonly descriptor: Descriptor
  /** A digest of the type and options (secrets included, never printed): changes when the client does. */
  readonly fingerprint: string
}

/** The decoded file: what the builders read. */
export interface Loaded {
  readonly file: string
  readonly environment: string | undefined
  readonly raw: File
  readonly providers: ReadonlyMap<string, ProviderEntry>
  readonly models: Readonly<Record<string, Model>>
  /** Block options as decoded by their owners' Schemas, by path (`models.fast.retry`, `limits.budget`, …). */
  readonly blocks: ReadonlyMap<string, unknown>
  /** Prompt template files, resolved against the config file's folder. */
  readonly prompts: ReadonlyArray<string>
}

export interface LoadOptions {
  readonly environment?: string | undefined
  /** The variables `${VAR}` reads (default `process.env`). */
  readonly env?: Readonly<Record<string, string | undefined>> | undefined
}

const secretKeys = new Set(["apiKey", "key", "secretAccessKey", "sessionToken", "accessToken", "password", "token"])

/** Secrets become `Redacted` so no error, log or summary can print them. */
const redactSecrets = (u: unknown): unknown => {
  if (Array.isArray(u)) return u.map(redactSecrets)
  if (!isRecord(u)) return u
  const out: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(u)) {
    out[key] = secretKeys.has(key) && typeof value === "string" ? Redacted.make(value) : redactSecrets(value)
  }
  return out
}

/** A message about a secret never shows the value: Schema messages quote what they got. */
const scrub = (issue: Issue): string =>
  issue.at.some((key) => typeof key === "string" && secretKeys.has(key))
    ? issue.message.replace(/,? got [\s\S]*$/, " (value hidden)")
    : issue.message

/** A package's exports, or undefined when it is not installed. */
const loadOptional = (name: string): Effect.Effect<Record<string, unknown> | undefined> =>
  Effect.promise(() => import(name).then((module: Record<string, unknown>) => module, () => undefined))

const fingerprintOf = (type: string, options: unknown): string =>
  createHash("sha256").update(`${type}\u0000${JSON.stringify(options)}`).digest("hex").slice(0, 16)

const issuesWithLines = (
  issues: ReadonlyArray<Issue>,
  locate: (path: ReadonlyArray<PropertyKey>) => string | undefined
): ReadonlyArray<SwitchboardConfigError.ConfigIssue> =>
  issues.map((issue) => {
    const path = issue.path !== "" ? issue.path : SwitchboardConfigError.joinPath("", issue.at)
    const where = locate(issue.at)
    const message = scrub(issue)
    return { path, message: where === undefined ? message : `${message} (${where})` }
  })

const schemaIssues = (
  schema: Schema.Top & { readonly DecodingServices: never },
  value: unknown,
  at: ReadonlyArray<PropertyKey>
): { readonly value?: unknown; readonly issues: ReadonlyArray<Issue> } => {
  const result = Schema.decodeUnknownResult(schema)(value, { errors: "all", onExcessProperty: "error" })
  if (Result.isSuccess(result)) return { value: result.success, issues: [] }
  const base = SwitchboardConfigError.joinPath("", at)
  return {
    issues: SwitchboardConfigError.issuesOf(base, result.failure.issue).map((issue) => ({
      ...issue,
      // Re-derive the key path for line lookup from the joined path.
      at: [...at, ...pathKeys(issue.path.slice(base.length))]
    }))
  }
}

/** `.a.b[2].c` → ["a", "b", 2, "c"] */
const pathKeys = (suffix: string): ReadonlyArray<PropertyKey> => {
  const keys: Array<PropertyKey> = []
  for (const match of suffix.matchAll(/\.?([^.[\]]+)|\[(\d+)\]/g)) {
    if (match[2] !== undefined) keys.push(Number(match[2]))
    else if (match[1] !== undefined) keys.push(match[1])
  }
  return keys
}

export const load = (path: string, options: LoadOptions = {}): Effect.Effect<Loaded, SwitchboardConfigError.SwitchboardConfigError> =>
  Effect.gen(function*() {
    const file = resolve(path)
    const ext = extname(file).toLowerCase()
    if (![".yaml", ".yml", ".json"].includes(ext)) {
      return yield* SwitchboardConfigError.fromIssues([{ path: "", message: `${path}: expected a .yaml, .yml or .json file` }])
    }
    const text = yield* Effect.tryPromise({
      try: () => readFile(file, "utf8"),
      catch: (cause) =>
        SwitchboardConfigError.fromIssues([{
          path: "",
          message: `cannot read ${path}: ${(cause as NodeJS.ErrnoException).code ?? String(cause)}`
        }])
    })
    const parsed = parse(path, text)
    if (parsed.source === undefined) return yield* SwitchboardConfigError.fromIssues(parsed.issues)
    const source: Source = parsed.source
    const env = options.env ?? process.env
    const issues: Array<Issue> = []

    if (!isRecord(source.value)) {
      return yield* SwitchboardConfigError.fromIssues([{ path: "", message: `${path}: expected a mapping at the top` }])
    }
    const environment = options.environment ?? (env["SWITCHBOARD_ENV"] === "" ? undefined : env["SWITCHBOARD_ENV"])
    const { environments, ...base } = source.value
    let merged: unknown = expand(base, env, [], issues)
    if (environment !== undefined) {
      const overlays = isRecord(environments) ? environments : {}
      const overlay = overlays[environment]
      if (overlay === undefined) {
        issues.push({
          path: "",
          at: ["environments"],
          message: `unknown environment "${environment}"; known: ${Object.keys(overlays).join(", ") || "none defined"}`
        })
      } else {
        merged = deepMerge(merged, expand(overlay, env, ["environments", environment], issues))
      }
    }
    // Lines: a path is looked up in the overlay first (it wins), then in the base.
    const locate = (at: ReadonlyArray<PropertyKey>) =>
      (environment !== undefined && at[0] !== "environments"
        ? source.locate(["environments", environment, ...at])
        : undefined) ?? source.locate(at)
    const withEnvironments = isRecord(merged) && environments !== undefined ? { ...merged, environments } : merged

    const shape = schemaIssues(FileShape, withEnvironments, [])
    issues.push(...shape.issues)
    if (shape.value === undefined) {
      return yield* SwitchboardConfigError.fromIssues(issuesWithLines(issues, locate))
    }
    const decodedShape = shape.value as typeof FileShape.Type
    const routes: Record<string, Route> = {}
    for (const [name, route] of Object.entries(decodedShape.routes)) {
      const kinds = (["fallback", "router", "model"] as const).filter((kind) => kind in route)
      if (kinds.length !== 1) {
        issues.push({
          path: "",
          at: ["routes", name],
          message: kinds.length === 0
            ? `expected one of fallback, router, model; got ${Object.keys(route).join(", ") || "nothing"}`
            : `a route is one of fallback, router, model, not several (${kinds.join(", ")})`
        })
        continue
      }
      const schema = kinds[0] === "fallback" ? FallbackRoute : kinds[0] === "router" ? RouterRoute : ModelRoute
      const decoded = schemaIssues(schema, route, ["routes", name])
      issues.push(...decoded.issues)
      if (decoded.value !== undefined) routes[name] = decoded.value as Route
    }
    if (issues.length > 0) return yield* SwitchboardConfigError.fromIssues(issuesWithLines(issues, locate))
    const raw: File = { ...decodedShape, routes }

    // Providers: each type's package decodes its own client options.
    const providers = new Map<string, ProviderEntry>()
    for (const [name, entry] of Object.entries(raw.providers)) {
      const type = entry["type"]
      if (typeof type !== "string" || !(ProviderTypes as ReadonlyArray<string>).includes(type)) {
        issues.push({
          path: "",
          at: ["providers", name, "type"],
          message: `expected one of ${ProviderTypes.join(", ")}, got ${JSON.stringify(type)}`
        })
        continue
      }
      const descriptor = yield* loadDescriptor(type)
      if (descriptor === undefined) {
        issues.push({
          path: "",
          at: ["providers", name, "type"],
          message: `provider type "${type}" needs the package ${packageFor(type)}: install it (npm install ${packageFor(type)})`
        })
        continue
      }
      const { type: _, ...clientOptions } = entry
      const decoded = schemaIssues(descriptor.clientOptions(type), redactSecrets(clientOptions), ["providers", name])
      issues.push(...decoded.issues)
      if (decoded.value !== undefined) {
        providers.set(name, {
          name,
          type: type as ProviderEntry["type"],
          options: decoded.value,
          descriptor,
          fingerprint: fingerprintOf(type, clientOptions)
        })
      }
    }

    // Blocks decoded by the combinators' own Schemas.
    const blocks = new Map<string, unknown>()
    const block = (kind: keyof typeof blockSchemas, value: unknown, at: ReadonlyArray<PropertyKey>) => {
      if (value === undefined) return
      const decoded = schemaIssues(blockSchemas[kind], redactSecrets(value), at)
      issues.push(...decoded.issues)
      if (decoded.value !== undefined) blocks.set(SwitchboardConfigError.joinPath("", at), decoded.value)
    }
    for (const [name, model] of Object.entries(raw.models)) {
      block("retry", model.retry, ["models", name, "retry"])
      block("breaker", model.breaker, ["models", name, "breaker"])
      block("hedge", model.hedge, ["models", name, "hedge"])
      block("defaults", model.defaults, ["models", name, "defaults"])
      if (model.timeout !== undefined) block("duration", model.timeout, ["models", name, "timeout"])
    }
    block("rateLimit", raw.limits?.rateLimit, ["limits", "rateLimit"])
    block("budget", raw.limits?.budget, ["limits", "budget"])
    block("cache", raw.cache, ["cache"])
    if (raw.state?.redis !== undefined) {
      // Shared state needs the Redis package; its own Schema checks the block.
      const redis = yield* loadOptional("@switchboard/redis")
      const schema = redis !== undefined && "Redis" in redis ? (redis.Redis as { readonly Options?: unknown }).Options : undefined
      if (schema === undefined || !Schema.isSchema(schema)) {
        issues.push({
          path: "",
          at: ["state", "redis"],
          message: "shared state on Redis needs the package @switchboard/redis: install it (npm install @switchboard/redis)"
        })
      } else {
        const decoded = schemaIssues(
          schema as Schema.Top & { readonly DecodingServices: never },
          redactSecrets(raw.state.redis),
          ["state", "redis"]
        )
        issues.push(...decoded.issues)
        if (decoded.value !== undefined) blocks.set("state.redis", decoded.value)
      }
    }
    block("telemetry", raw.telemetry, ["telemetry"])
    for (const [index, key] of (raw.gateway?.keys ?? []).entries()) {
      block("budget", key.budget, ["gateway", "keys", index, "budget"])
      block("rateLimit", key.rateLimit, ["gateway", "keys", index, "rateLimit"])
    }
    if (raw.gateway?.drainTimeout !== undefined) block("duration", raw.gateway.drainTimeout, ["gateway", "drainTimeout"])

    issues.push(...crossCheck(raw))
    if (issues.length > 0) return yield* SwitchboardConfigError.fromIssues(issuesWithLines(issues, locate))
    const folder = dirname(file)
    return {
      file,
      environment,
      raw,
      providers,
      models: raw.models,
      blocks,
      prompts: (raw.prompts ?? []).map((prompt) => resolve(folder, prompt))
    }
  })
