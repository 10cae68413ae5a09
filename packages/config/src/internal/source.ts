/**
 * Reading a config file: YAML or JSON (one parser: JSON is YAML 1.2), the
 * environment overlay, `${VAR}` / `${VAR:-default}` expansion, and where in
 * the file each path was written, so errors can say `file.yaml:12`.
 *
 * @internal
 */
import { SwitchboardConfigError } from "@switchboard/core"
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Document } from "yaml"

/** A parsed file: its plain value and a way to locate a path in it. */
export interface Source {
  readonly file: string
  readonly value: unknown
  /** `file:line` for a path written in the file, if it was. */
  readonly locate: (path: ReadonlyArray<PropertyKey>) => string | undefined
}

export const parse = (file: string, text: string): { readonly source?: Source; readonly issues: ReadonlyArray<SwitchboardConfigError.ConfigIssue> } => {
  const lineCounter = new LineCounter()
  const doc: Document = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true })
  if (doc.errors.length > 0) {
    return {
      // The first error only: the parser's later ones follow from it.
      issues: doc.errors.slice(0, 1).map((error) => {
        const line = error.linePos?.[0]
        return {
          path: "",
          message: `${file}${line === undefined ? "" : `:${line.line}:${line.col}`}: ${error.message.split("\n")[0]}`
        }
      })
    }
  }
  const locate = (path: ReadonlyArray<PropertyKey>): string | undefined => {
    // Walk as deep as the document goes: a missing key is reported at its parent.
    let node: unknown = doc.contents
    let found: unknown = node
    for (const key of path) {
      if (isMap(node)) node = node.get(key, true)
      else if (isSeq(node) && typeof key === "number") node = node.get(key, true)
      else break
      if (node === undefined) break
      found = node
    }
    const range = (found as { range?: [number, number, number] | null } | undefined)?.range
    if (range == null) return undefined
    const pos = lineCounter.linePos(range[0])
    return `${file}:${pos.line}`
  }
  return { source: { file, value: doc.toJS({ maxAliasCount: 100 }), locate }, issues: [] }
}

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

/** Objects merged key by key; anything else (arrays included) replaced by the overlay. */
export const deepMerge = (base: unknown, overlay: unknown): unknown => {
  if (!isRecord(base) || !isRecord(overlay)) return overlay
  const out: Record<string, unknown> = { ...base }
  for (const [key, value] of Object.entries(overlay)) out[key] = key in base ? deepMerge(base[key], value) : value
  return out
}

const pattern = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(.*?))?\}/g

/**
 * Expands `${VAR}` and `${VAR:-default}` in every string; `$${` escapes a
 * literal `${`. A variable that is unset and has no default is an issue
 * naming the variable and the path.
 */
export const expand = (
  value: unknown,
  env: Readonly<Record<string, string | undefined>>,
  base: ReadonlyArray<PropertyKey>,
  issues: Array<SwitchboardConfigError.ConfigIssue & { readonly at: ReadonlyArray<PropertyKey> }>
): unknown => {
  const walk = (u: unknown, path: ReadonlyArray<PropertyKey>): unknown => {
    if (typeof u === "string") {
      if (!u.includes("${")) return u
      const escaped = u.split("$${")
      return escaped.map((segment) =>
        segment.replace(pattern, (_, name: string, fallback: string | undefined) => {
          const found = env[name]
          if (found !== undefined && found !== "") return found
          if (fallback !== undefined) return fallback
          if (found === "") return ""
          issues.push({
            path: SwitchboardConfigError.joinPath("", path),
            at: path,
            message: `environment variable ${name} is not set (write \${${name}:-default} to give a default)`
          })
          return ""
        })
      ).join("${")
    }
    if (Array.isArray(u)) return u.map((item, index) => walk(item, [...path, index]))
    if (isRecord(u)) {
      const out: Record<string, unknown> = {}
      for (const [key, item] of Object.entries(u)) out[key] = walk(item, [...path, key])
      return out
    }
    return u
  }
  return walk(value, base)
}

export { isRecord, isScalar }
