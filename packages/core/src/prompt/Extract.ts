/**
 * Pulling structured data out of a model's free text. Models asked for JSON
 * answer with bare JSON, with JSON in a ```json fence, or with JSON wrapped in
 * prose ("Sure! Here it is: {…} Let me know…"); {@link json} reads all three.
 * {@link codeBlocks} lists the fenced code of a reply, and {@link partialJson}
 * reads the value a still-streaming JSON text has so far (for
 * `Structured.streamObject`).
 *
 * Everything here is pure and never throws.
 *
 * @since 0.1.0
 */
import { Option } from "effect"

/**
 * A fenced block of code: its info-string language (lower-cased; `undefined`
 * when the fence names none) and its code, without the fences.
 *
 * @since 0.1.0
 * @category models
 */
export interface CodeBlock {
  readonly language: string | undefined
  readonly code: string
}

const fence = /^( {0,3})(`{3,}|~{3,})[ \t]*([^\s`]*)[^\n]*$/

/**
 * Every fenced code block (``` or ~~~) of a text, in order. A block left open
 * at the end of the text (a reply cut off by `maxTokens`) runs to the end.
 *
 * @example
 * ```ts
 * import { Extract } from "@switchboard/core"
 *
 * Extract.codeBlocks("Here:\n```ts\nconst x = 1\n```\ndone")
 * // [{ language: "ts", code: "const x = 1" }]
 * ```
 *
 * @since 0.1.0
 * @category extractors
 */
export const codeBlocks = (text: string): ReadonlyArray<CodeBlock> => {
  const lines = text.split(/\r?\n/)
  const blocks: Array<CodeBlock> = []
  let open: { readonly marker: string; readonly language: string | undefined; readonly lines: Array<string> } | undefined
  for (const line of lines) {
    if (open === undefined) {
      const match = fence.exec(line)
      if (match !== null) {
        const language = match[3]!.length > 0 ? match[3]!.toLowerCase() : undefined
        open = { marker: match[2]!, language, lines: [] }
      }
      continue
    }
    const trimmed = line.trim()
    if (trimmed.startsWith(open.marker[0]!.repeat(open.marker.length)) && /^(`{3,}|~{3,})$/.test(trimmed)) {
      blocks.push({ language: open.language, code: open.lines.join("\n") })
      open = undefined
      continue
    }
    open.lines.push(line)
  }
  if (open !== undefined && open.lines.length > 0) blocks.push({ language: open.language, code: open.lines.join("\n") })
  return blocks
}

const tryParse = (text: string): Option.Option<unknown> => {
  try {
    return Option.some(JSON.parse(text))
  } catch {
    return Option.none()
  }
}

/** The end (exclusive) of the balanced `{…}` / `[…]` starting at `start`, or -1. */
const balancedEnd = (text: string, start: number): number => {
  const stack: Array<string> = []
  let inString = false
  for (let i = start; i < text.length; i++) {
    const c = text[i]!
    if (inString) {
      if (c === "\\") i++
      else if (c === "\"") inString = false
      continue
    }
    if (c === "\"") inString = true
    else if (c === "{") stack.push("}")
    else if (c === "[") stack.push("]")
    else if (c === "}" || c === "]") {
      if (stack.pop() !== c) return -1
      if (stack.length === 0) return i + 1
    }
  }
  return -1
}

/** The first balanced JSON object or array inside prose that parses. */
const embedded = (text: string): Option.Option<unknown> => {
  for (let i = 0; i < text.length; i++) {
    const c = text[i]
    if (c !== "{" && c !== "[") continue
    const end = balancedEnd(text, i)
    if (end < 0) continue
    const parsed = tryParse(text.slice(i, end))
    if (Option.isSome(parsed)) return parsed
  }
  return Option.none()
}

/**
 * The JSON value of a reply: the whole text when it is JSON; else the first
 * fenced block that parses (```json blocks first); else the first balanced
 * `{…}` or `[…]` inside the prose that parses. `None` when there is none.
 *
 * @example
 * ```ts
 * import { Extract } from "@switchboard/core"
 *
 * Extract.json('Sure! {"city": "Paris"} Anything else?') // Option.some({ city: "Paris" })
 * ```
 *
 * @since 0.1.0
 * @category extractors
 */
export const json = (text: string): Option.Option<unknown> => {
  const whole = tryParse(text.trim())
  if (Option.isSome(whole)) return whole
  const blocks = codeBlocks(text)
  const ordered = [
    ...blocks.filter((block) => block.language === "json" || block.language === "jsonc"),
    ...blocks.filter((block) => block.language !== "json" && block.language !== "jsonc")
  ]
  for (const block of ordered) {
    const parsed = tryParse(block.code.trim())
    if (Option.isSome(parsed)) return parsed
    const inner = embedded(block.code)
    if (Option.isSome(inner)) return inner
  }
  return embedded(text)
}

/**
 * The value a JSON text that is still arriving has so far: open strings,
 * arrays and objects are closed, and a trailing key without its value is
 * left out. `None` until the first `{` or `[` (prose before it is skipped) or
 * when nothing complete can be read yet.
 *
 * @example
 * ```ts
 * import { Extract } from "@switchboard/core"
 *
 * Extract.partialJson('{"name": "Ada", "langs": ["en", "f') // Option.some({ name: "Ada", langs: ["en", "f"] })
 * ```
 *
 * @since 0.1.0
 * @category extractors
 */
export const partialJson = (text: string): Option.Option<unknown> => {
  const objectAt = text.indexOf("{")
  const arrayAt = text.indexOf("[")
  const start = objectAt < 0 ? arrayAt : arrayAt < 0 ? objectAt : Math.min(objectAt, arrayAt)
  if (start < 0) return Option.none()
  const source = text.slice(start)
  // `stack` holds the closers; `keys[i]` says whether the object at depth i expects a key next.
  const stack: Array<string> = []
  const keys: Array<boolean> = []
  let inString = false
  let stringIsKey = false
  let safeEnd = 0
  let safeClosers = ""
  const closers = () => stack.slice().reverse().join("")
  const markSafe = (end: number) => {
    safeEnd = end
    safeClosers = closers()
  }
  for (let i = 0; i < source.length; i++) {
    const c = source[i]!
    if (inString) {
      if (c === "\\") i++
      else if (c === "\"") {
        inString = false
        if (!stringIsKey) markSafe(i + 1)
      }
      continue
    }
    switch (c) {
      case "\"": {
        inString = true
        const top = stack.length - 1
        stringIsKey = top >= 0 && stack[top] === "}" && keys[top] === true
        break
      }
      case "{":
        stack.push("}")
        keys.push(true)
        markSafe(i + 1)
        break
      case "[":
        stack.push("]")
        keys.push(false)
        markSafe(i + 1)
        break
      case "}":
      case "]":
        stack.pop()
        keys.pop()
        markSafe(i + 1)
        if (stack.length === 0) return tryParse(source.slice(0, i + 1))
        break
      case ":":
        keys[keys.length - 1] = false
        break
      case ",":
        markSafe(i)
        if (stack[stack.length - 1] === "}") keys[keys.length - 1] = true
        break
    }
  }
  const candidates: Array<string> = []
  if (inString && !stringIsKey) {
    // A dangling escape would swallow the closing quote.
    const body = source.endsWith("\\") && !source.endsWith("\\\\") ? source.slice(0, -1) : source
    candidates.push(body + "\"" + closers())
  }
  if (!inString) candidates.push(source + closers())
  candidates.push(source.slice(0, safeEnd) + safeClosers)
  for (const candidate of candidates) {
    const parsed = tryParse(candidate)
    if (Option.isSome(parsed)) return parsed
  }
  return Option.none()
}
