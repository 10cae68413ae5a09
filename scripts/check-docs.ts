/**
 * Docs that cannot rot: type-checks every ```ts example in the JSDoc of
 * `packages/*\/src` and in every package README (and the root README), as
 * files importing from the package names, with one `tsc` run. Run by
 * `pnpm typecheck` (so by `pnpm test`), and alone with `node scripts/check-docs.ts`.
 *
 * An example without its own `import`s is a snippet: it gets a prelude that
 * imports every name the packages' entry points export (`Llm`, `Retry`,
 * `OpenAI`, `Sim`, …) and the common `effect` modules, as Effect's docgen does.
 * An example with imports is a whole program and is checked as written.
 * A snippet that `yield*`s is checked as the body of an `Effect.gen`.
 * A fence written ```ts skip-check (or any other language) is not checked.
 * Failures are reported at the example's file and line.
 *
 * `scripts/check-docs.pending.json` lists examples known to fail in files
 * whose owners are editing them right now, as `{ "file": ..., "firstLine": ... }`
 * (the example's first line, which moves less than its line number): those are
 * reported but do not fail the run, and an entry whose example now passes or
 * is gone is reported as stale. Keep the list empty.
 */
import { spawnSync } from "node:child_process"
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { join, relative } from "node:path"

const root = join(import.meta.dirname, "..")
const out = join(root, ".check-docs")
const packagesDir = join(root, "packages")
const packages = readdirSync(packagesDir).filter((p) => existsSync(join(packagesDir, p, "package.json")))

interface Example {
  readonly source: string
  readonly line: number
  readonly code: string
}

/** The names an entry point exports, from its `export * as X` / `export { X, type Y }` lines. */
const exportedNames = (file: string): Array<string> => {
  if (!existsSync(file)) return []
  const text = readFileSync(file, "utf8")
  const names = [...text.matchAll(/^export \* as (\w+) from/gm)].map((m) => m[1]!)
  for (const m of text.matchAll(/^export (?:type )?\{([^}]*)\} from/gm)) {
    for (const part of m[1]!.split(",")) {
      const name = part.trim().replace(/^type\s+/, "").split(/\s+as\s+/).at(-1)!.trim()
      if (name !== "") names.push(name)
    }
  }
  return names
}

const taken = new Set<string>()
const preludeLines: Array<string> = []
const importFrom = (specifier: string, names: Array<string>) => {
  const fresh = names.filter((n) => !taken.has(n))
  for (const n of fresh) taken.add(n)
  if (fresh.length > 0) preludeLines.push(`import { ${fresh.join(", ")} } from "${specifier}"`)
}
importFrom(
  "effect",
  ["Cause", "Config", "Console", "Data", "Duration", "Effect", "Exit", "Layer", "Option", "Redacted", "Schedule", "Schema", "Scope", "Stream"]
)
for (const name of packages) {
  const manifest = JSON.parse(readFileSync(join(packagesDir, name, "package.json"), "utf8")) as {
    name: string
    exports?: Record<string, Record<string, string>>
  }
  for (const [subpath, targets] of Object.entries(manifest.exports ?? {})) {
    const src = targets["@switchboard/source"]
    if (src === undefined) continue
    importFrom(subpath === "." ? manifest.name : `${manifest.name}/${subpath.slice(2)}`, exportedNames(join(packagesDir, name, src)))
  }
}
const prelude = `${preludeLines.join("\n")}\n`

const fence = /^```ts\s*$/
const fromMarkdown = (file: string): Array<Example> => {
  const lines = readFileSync(file, "utf8").split("\n")
  const found: Array<Example> = []
  for (let i = 0; i < lines.length; i++) {
    if (!fence.test(lines[i]!)) continue
    const start = i + 1
    const body: Array<string> = []
    for (i++; i < lines.length && !/^```\s*$/.test(lines[i]!); i++) body.push(lines[i]!)
    found.push({ source: file, line: start + 1, code: body.join("\n") })
  }
  return found
}
const fromJsDoc = (file: string): Array<Example> => {
  const lines = readFileSync(file, "utf8").split("\n")
  const found: Array<Example> = []
  for (let i = 0; i < lines.length; i++) {
    const open = /^\s*\* ?```ts\s*$/.exec(lines[i]!)
    if (open === null) continue
    const start = i + 1
    const body: Array<string> = []
    for (i++; i < lines.length && !/^\s*\* ?```\s*$/.test(lines[i]!); i++) body.push(lines[i]!.replace(/^\s*\* ?/, ""))
    found.push({ source: file, line: start + 1, code: body.join("\n") })
  }
  return found
}
const walk = (dir: string): Array<string> =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) => e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)])

const examples: Array<Example> = []
for (const name of packages) {
  const src = join(packagesDir, name, "src")
  if (existsSync(src)) for (const file of walk(src).filter((f) => f.endsWith(".ts")).sort()) examples.push(...fromJsDoc(file))
  const readme = join(packagesDir, name, "README.md")
  if (existsSync(readme)) examples.push(...fromMarkdown(readme))
}
examples.push(...fromMarkdown(join(root, "README.md")))

rmSync(out, { recursive: true, force: true })
mkdirSync(out, { recursive: true })
const origin = new Map<string, { example: Example; offset: number }>()
examples.forEach((example, index) => {
  const whole = /^\s*import\s/m.test(example.code)
  // A snippet that `yield*`s is the body of a generator: checked inside `Effect.gen`.
  const body = !whole && /^\s*(const .*=\s*)?yield\*/m.test(example.code)
  const head = whole ? "" : body ? `${prelude}export const example = Effect.gen(function*() {\n` : prelude
  const file = `example-${String(index).padStart(3, "0")}.ts`
  writeFileSync(join(out, file), `${head}${example.code}\n${body ? "})\n" : ""}`)
  origin.set(file, { example, offset: head.split("\n").length - 1 })
})
writeFileSync(
  join(out, "tsconfig.json"),
  JSON.stringify({
    extends: "../tsconfig.base.json",
    compilerOptions: { noUnusedLocals: false, noEmit: true, skipLibCheck: true },
    include: ["*.ts"]
  }, null, 2)
)

interface Pending {
  readonly file: string
  readonly firstLine: string
}
const pendingFile = join(import.meta.dirname, "check-docs.pending.json")
const pending: Array<Pending> = existsSync(pendingFile) ? JSON.parse(readFileSync(pendingFile, "utf8")) as Array<Pending> : []
const keyOf = (e: Example) => `${relative(root, e.source)}\n${e.code.split("\n").find((l) => l.trim() !== "")?.trim() ?? ""}`
const pendingKeys = new Set(pending.map((p) => `${p.file}\n${p.firstLine}`))

const tsc = join(root, "node_modules", ".bin", "tsc")
const result = spawnSync(tsc, ["-p", out, "--pretty", "false"], { cwd: root, encoding: "utf8" })
const output = `${result.stdout}${result.stderr}`.trim()
const failing = new Map<string, Example>()
if (result.status !== 0) {
  for (const line of output.split("\n")) {
    const m = /^\.check-docs[\\/](example-\d+\.ts)\((\d+),(\d+)\): (.*)$/.exec(line)
    const at = m === null ? undefined : origin.get(m[1]!)
    if (m === null || at === undefined) {
      console.error(line)
      continue
    }
    const exampleLine = Number(m[2]) - at.offset
    failing.set(`${relative(root, at.example.source)}:${at.example.line}`, at.example)
    const known = pendingKeys.has(keyOf(at.example)) ? " (pending)" : ""
    console.error(`${relative(root, at.example.source)}:${at.example.line + exampleLine - 1}${known}: ${m[4]}`)
  }
  if (failing.size === 0) {
    console.error("check-docs: tsc failed outside the examples")
    process.exit(1)
  }
}
const failingKeys = new Set([...failing.values()].map(keyOf))
for (const p of pending) {
  if (!failingKeys.has(`${p.file}\n${p.firstLine}`)) {
    console.log(`check-docs: stale entry in check-docs.pending.json (passes now or is gone, remove it): ${p.file}: ${p.firstLine}`)
  }
}
const unexpected = [...failing.entries()].filter(([, e]) => !pendingKeys.has(keyOf(e)))
if (unexpected.length > 0) {
  console.error(`check-docs: ${unexpected.length} of ${examples.length} examples do not type-check: ${unexpected.map(([at]) => at).join(", ")} (files kept in .check-docs/)`)
  process.exit(1)
}
rmSync(out, { recursive: true, force: true })
const known = failing.size > 0 ? `; ${failing.size} known failures pending in files being edited (check-docs.pending.json)` : ""
console.log(`check-docs: ${examples.length - failing.size} of ${examples.length} examples type-check${known}`)
