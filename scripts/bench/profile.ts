/**
 * Aggregates V8 CPU profiles (`node --cpu-prof --cpu-prof-dir=DIR …`): self
 * time by function and by file (a package's files grouped by package), as a
 * share of all samples, and the inclusive (total) time of the functions whose
 * file matches `--match` (default `packages/`: Switchboard's own), to compare
 * what a leaf adds over its SDK.
 *
 * Usage: `node scripts/bench/profile.ts DIR_OR_FILE… [--top 30] [--match packages/]`
 */
import { readdirSync, readFileSync, statSync } from "node:fs"
import { join } from "node:path"
import { flag } from "./args.ts"

interface Node {
  readonly id: number
  readonly children?: ReadonlyArray<number> | undefined
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number }
}
interface Profile {
  readonly nodes: ReadonlyArray<Node>
  readonly samples: ReadonlyArray<number>
  readonly timeDeltas: ReadonlyArray<number>
}

const top = Number(flag("--top") ?? 30)
const match = flag("--match") ?? "packages/"
const inputs = process.argv.slice(2).filter((a, i, all) => !a.startsWith("--") && !all[i - 1]?.startsWith("--"))
const files = inputs.flatMap((input) =>
  statSync(input).isDirectory()
    ? readdirSync(input).filter((f) => f.endsWith(".cpuprofile")).map((f) => join(input, f))
    : [input]
)

/** A file's group: `pkg@version/path` inside node_modules, `packages/<name>/…` in the repo, node internals as is. */
const fileOf = (url: string): string => {
  if (url === "") return "(native / V8)"
  const store = /node_modules\/\.pnpm\/[^/]+\/node_modules\/((?:@[^/]+\/)?[^/]+)\/(.*)$/.exec(url)
  if (store) return `${store[1]}/${store[2]}`
  const repo = /\/(packages\/[^/]+\/.*|scripts\/.*|examples\/.*)$/.exec(url)
  if (repo) return repo[1]!
  return url.replace(/^file:\/\//, "")
}
const packageOf = (file: string): string => {
  if (file.startsWith("packages/")) return file.split("/").slice(0, 2).join("/")
  if (file.startsWith("node:")) return "node internals"
  if (file.startsWith("(")) return file
  const scoped = file.startsWith("@")
  return file.split("/").slice(0, scoped ? 2 : 1).join("/")
}

const byFunction = new Map<string, number>()
const byFile = new Map<string, number>()
const byPackage = new Map<string, number>()
const inclusive = new Map<string, number>()
let total = 0
for (const file of files) {
  const profile = JSON.parse(readFileSync(file, "utf8")) as Profile
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]))
  const parent = new Map<number, number>()
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  const label = (n: Node) => `${n.callFrame.functionName || "(anonymous)"}  ${fileOf(n.callFrame.url)}:${n.callFrame.lineNumber + 1}`
  profile.samples.forEach((id, i) => {
    const node = nodes.get(id)!
    const dt = profile.timeDeltas[i] ?? 0
    total += dt
    const f = fileOf(node.callFrame.url)
    const name = `${node.callFrame.functionName || "(anonymous)"}  ${f}:${node.callFrame.lineNumber + 1}`
    byFunction.set(name, (byFunction.get(name) ?? 0) + dt)
    byFile.set(f, (byFile.get(f) ?? 0) + dt)
    const p = packageOf(f)
    byPackage.set(p, (byPackage.get(p) ?? 0) + dt)
    // Inclusive: every matching function on this sample's stack, once.
    const seen = new Set<string>()
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const frame = nodes.get(at)!
      if (!fileOf(frame.callFrame.url).includes(match)) continue
      const key = label(frame)
      if (seen.has(key)) continue
      seen.add(key)
      inclusive.set(key, (inclusive.get(key) ?? 0) + dt)
    }
  })
}

const print = (title: string, map: Map<string, number>, n: number) => {
  console.log(`\n${title}`)
  for (const [key, us] of [...map].sort((a, b) => b[1] - a[1]).slice(0, n)) {
    console.log(`${(100 * us / total).toFixed(1).padStart(5)}%  ${(us / 1000).toFixed(0).padStart(6)} ms  ${key}`)
  }
}
console.log(`${files.length} profile(s), ${(total / 1000).toFixed(0)} ms sampled`)
print("self time by package", byPackage, 20)
print("self time by file", byFile, top)
print("self time by function", byFunction, top)
print(`total (inclusive) time of the functions in files matching "${match}"`, inclusive, top)
