/**
 * The consumer test: what a new user gets from the tarballs, outside the
 * workspace, on plain Node. Run by `.ci/run` (and `pnpm release`) as
 * `pnpm consumer`.
 *
 * 1. builds every package (`scripts/build.ts`) and packs it (`pnpm -r pack`);
 * 2. checks every tarball: no tests, no `src/`, no tsconfig, no `workspace:`
 *    ranges, no `@switchboard/source` condition, every `exports`/`types`/`bin`
 *    target present, bins are JavaScript with a shebang;
 * 3. installs all tarballs with `npm` into a fresh project in the OS temp dir;
 * 4. type-checks `app/stack.ts` there with a `tsc --init`-style config
 *    (`strict` on, `skipLibCheck` off), then with `strict: false`, with the
 *    workspace's TypeScript 7 and with TypeScript 5 from the registry;
 * 5. runs the compiled program with plain `node` (Node 24, then Node 22 from
 *    the registry when it can be had): a fallback stack over the in-process
 *    simulator;
 * 6. starts the installed `switchboard-sim` bin, and runs the program against it.
 *
 * Any miss exits non-zero with a message naming it. `--keep` keeps the temp
 * project; `--skip-node22` skips step 5 on Node 22.
 */
import { spawn, spawnSync, type SpawnSyncOptions } from "node:child_process"
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { delimiter, dirname, join } from "node:path"

const root = join(import.meta.dirname, "..", "..")
const args = new Set(process.argv.slice(2))
const started = performance.now()

const fail = (what: string, detail = ""): never => {
  console.error(`\nconsumer: FAIL — ${what}${detail === "" ? "" : `\n${detail}`}`)
  process.exit(1)
}
const step = (what: string) => console.log(`consumer: [${((performance.now() - started) / 1000).toFixed(1)}s] ${what}`)

// The user's environment: no workspace condition, no inherited NODE_OPTIONS, and
// `node` on PATH is the real binary (the workspace's node_modules/.bin/node is a
// shell wrapper: a signal sent to a bin started through it would miss Node).
const userEnv: NodeJS.ProcessEnv = {
  ...process.env,
  NODE_OPTIONS: "",
  PATH: [dirname(process.execPath), process.env["PATH"]].join(delimiter)
}
for (const key of Object.keys(userEnv)) if (key.startsWith("npm_")) delete userEnv[key]

const run = (command: string, argv: ReadonlyArray<string>, options: SpawnSyncOptions & { what: string }) => {
  const result = spawnSync(command, argv, { encoding: "utf8", timeout: 600_000, ...options })
  if (result.status !== 0) {
    fail(`${options.what} (${[command, ...argv].join(" ")} exited ${result.status ?? result.signal})`,
      `${String(result.stdout ?? "")}${String(result.stderr ?? "")}`.trim())
  }
  return String(result.stdout ?? "")
}

// pnpm: the one running this script, else `npx -y pnpm@10`.
const pnpm: [string, Array<string>] = process.env["npm_execpath"]?.includes("pnpm") === true
  ? [process.execPath, [process.env["npm_execpath"]]]
  : ["npx", ["-y", "pnpm@10"]]

// 1. build and pack
const work = mkdtempSync(join(tmpdir(), "switchboard-consumer-"))
const packs = join(work, "packs")
mkdirSync(packs)
step(`building (scripts/build.ts); temp dir ${work}`)
run(process.execPath, [join(root, "scripts", "build.ts")], { cwd: root, what: "build" })
step("packing every package (pnpm -r pack)")
run(pnpm[0], [...pnpm[1], "-r", "pack", "--pack-destination", packs], { cwd: root, what: "pnpm -r pack" })
const tarballs = readdirSync(packs).filter((f) => f.endsWith(".tgz")).sort()
const expected = readdirSync(join(root, "packages")).filter((p) =>
  statSync(join(root, "packages", p, "package.json"), { throwIfNoEntry: false }) !== undefined
)
if (tarballs.length !== expected.length) fail(`expected ${expected.length} tarballs, got ${tarballs.length}: ${tarballs.join(", ")}`)

// 2. tarball contents
const targetsOf = (value: unknown): Array<string> =>
  typeof value === "string" ? [value] : value !== null && typeof value === "object" ? Object.values(value).flatMap(targetsOf) : []
const conditionsOf = (value: unknown): Array<string> =>
  value !== null && typeof value === "object"
    ? Object.entries(value).flatMap(([k, v]) => [...(k.startsWith(".") ? [] : [k]), ...conditionsOf(v)])
    : []
const sizes: Array<string> = []
for (const tarball of tarballs) {
  const file = join(packs, tarball)
  const entries = run("tar", ["tzf", file], { what: `listing ${tarball}` }).split("\n").filter((e) => e !== "")
    .map((e) => e.replace(/^package\//, ""))
  const has = new Set(entries)
  const out = join(work, "unpacked", tarball)
  mkdirSync(out, { recursive: true })
  run("tar", ["xzf", file, "-C", out], { what: `unpacking ${tarball}` })
  const manifest = JSON.parse(readFileSync(join(out, "package", "package.json"), "utf8")) as Record<string, unknown>
  const name = String(manifest["name"])
  for (const bin of targetsOf(manifest["bin"])) {
    if (!bin.endsWith(".js")) fail(`${name}: bin ${bin} is not JavaScript (Node never strips types under node_modules)`)
    if (!has.has(bin.replace(/^\.\//, ""))) fail(`${name}: bin ${bin} is not in the tarball`)
    if (!readFileSync(join(out, "package", bin), "utf8").startsWith("#!/usr/bin/env node")) fail(`${name}: bin ${bin} has no shebang`)
  }
  const bad = entries.filter((e) =>
    /(^|\/)(test|tests|__tests__)\//.test(e) || /\.test\.[cm]?[jt]s$/.test(e) || /(^|\/)tsconfig[^/]*\.json$/.test(e) ||
    /\.tsbuildinfo$/.test(e) || e.startsWith("src/") || (e.endsWith(".ts") && !e.endsWith(".d.ts"))
  )
  if (bad.length > 0) fail(`${name}: the tarball ships files users do not need`, bad.join("\n"))
  for (const needed of ["package.json", "LICENSE", "README.md"]) {
    if (!has.has(needed) && !(needed === "README.md" && !statSync(join(root, "packages", name.split("/")[1]!, "README.md"), { throwIfNoEntry: false }))) {
      fail(`${name}: ${needed} missing from the tarball`)
    }
  }
  const conditions = conditionsOf(manifest["exports"])
  if (conditions.includes("@switchboard/source")) fail(`${name}: the published exports keep the workspace-only @switchboard/source condition`)
  for (const entry of Object.values((manifest["exports"] ?? {}) as Record<string, Record<string, unknown>>)) {
    if (typeof entry !== "object" || !("types" in entry) || !("import" in entry)) fail(`${name}: every export needs "types" and "import" conditions`)
  }
  const targets = [...targetsOf(manifest["exports"]), ...targetsOf(manifest["types"]), ...targetsOf(manifest["main"]), ...targetsOf(manifest["bin"])]
  if (targets.length === 0) fail(`${name}: no exports`)
  for (const target of targets) {
    if (!has.has(target.replace(/^\.\//, ""))) fail(`${name}: exports/bin target ${target} is not in the tarball`)
  }
  const ranges = ["dependencies", "peerDependencies", "optionalDependencies"].flatMap((k) =>
    Object.entries((manifest[k] ?? {}) as Record<string, string>))
  const workspace = ranges.filter(([, v]) => v.startsWith("workspace:"))
  if (workspace.length > 0) fail(`${name}: workspace: ranges in the published manifest`, JSON.stringify(workspace))
  const deps = (manifest["dependencies"] ?? {}) as Record<string, string>
  const pinnedEffect = Object.keys(deps).filter((d) => d === "effect" || d.startsWith("@effect/"))
  if (pinnedEffect.length > 0) fail(`${name}: ${pinnedEffect.join(", ")} must be peerDependencies, not dependencies`)
  const peers = (manifest["peerDependencies"] ?? {}) as Record<string, string>
  if (peers["effect"] === undefined) fail(`${name}: effect is not a peerDependency`)
  const engines = (manifest["engines"] ?? {}) as Record<string, string>
  if (!/^>=2[2-9]/.test(engines["node"] ?? "")) fail(`${name}: engines.node must state Node >= 22, got ${JSON.stringify(engines["node"])}`)
  sizes.push(`${name.padEnd(24)} ${(statSync(file).size / 1024).toFixed(1).padStart(7)} kB packed, ${entries.length} files`)
}
step(`${tarballs.length} tarballs checked:\n  ${sizes.join("\n  ")}`)

// 3. a fresh project outside the workspace
const project = join(work, "project")
mkdirSync(join(project, "app"), { recursive: true })
writeFileSync(join(project, "package.json"), JSON.stringify({ name: "consumer", private: true, type: "module" }, null, 2))
copyFileSync(join(import.meta.dirname, "app", "stack.ts"), join(project, "app", "stack.ts"))
const rootManifest = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { devDependencies: Record<string, string> }
const effectVersion = rootManifest.devDependencies["effect"]!
step("npm install of the tarballs (+ effect, @effect/platform-node, @types/node, typescript@5 from the registry)")
run("npm", [
  "install", "--no-audit", "--no-fund", "--loglevel=error",
  ...tarballs.map((t) => join(packs, t)),
  `effect@${effectVersion}`, `@effect/platform-node@${rootManifest.devDependencies["@effect/platform-node"]!}`,
  "@types/node@24", "typescript@5"
], { cwd: project, env: userEnv, what: "npm install of the tarballs" })

// 4. type-check the user file: a `tsc --init` config (TypeScript 7's), skipLibCheck off
const initConfig = {
  module: "nodenext",
  target: "esnext",
  types: ["node"],
  rootDir: "app",
  outDir: "out",
  sourceMap: true,
  noUncheckedIndexedAccess: true,
  exactOptionalPropertyTypes: true,
  strict: true,
  verbatimModuleSyntax: true,
  isolatedModules: true,
  noUncheckedSideEffectImports: true,
  moduleDetection: "force",
  skipLibCheck: false
}
const { exactOptionalPropertyTypes: _, ...loose } = initConfig // needs strictNullChecks, so it goes with strict
const compilers: Array<[string, string]> = [
  ["TypeScript 7 (workspace)", join(root, "node_modules", ".bin", "tsc")],
  ["TypeScript 5 (registry)", join(project, "node_modules", ".bin", "tsc")]
]
for (const [label, compilerOptions] of [
  ["strict", { ...initConfig, noEmit: true }],
  ["strict: false", { ...loose, strict: false, noEmit: true }]
] as const) {
  writeFileSync(join(project, "tsconfig.json"), JSON.stringify({ compilerOptions, include: ["app"] }, null, 2))
  for (const [compiler, tsc] of compilers) {
    step(`tsc, ${label}, skipLibCheck false — ${compiler}`)
    run(tsc, ["-p", "."], { cwd: project, env: userEnv, what: `type-checking the user file (${label}, ${compiler})` })
  }
}
writeFileSync(join(project, "tsconfig.json"), JSON.stringify({ compilerOptions: initConfig, include: ["app"] }, null, 2))
run(compilers[0]![1], ["-p", "."], { cwd: project, env: userEnv, what: "compiling the user file" })

// 5. run it with plain node
const checkResult = (what: string, stdout: string) => {
  const line = stdout.split("\n").find((l) => l.startsWith("RESULT "))
  if (line === undefined) fail(`${what}: no RESULT line`, stdout)
  const result = JSON.parse(line!.slice("RESULT ".length)) as {
    fallback: { provider: string; text: string; attempts: Array<string> }
    direct: { provider: string; text: string }
    error: string
    redacted: string
  }
  if (result.fallback.provider !== "anthropic" || result.fallback.text === "") fail(`${what}: the fallback did not reach Anthropic`, line)
  if (result.fallback.attempts.at(-1) !== "anthropic:ok" || !result.fallback.attempts.includes("openai:NetworkError")) {
    fail(`${what}: unexpected attempts`, line)
  }
  if (result.direct.provider !== "openai" || result.direct.text === "") fail(`${what}: OpenAI over the simulator did not answer`, line)
  if (result.error !== "NetworkError") fail(`${what}: a dead endpoint did not fail with a typed NetworkError`, line)
  if (result.redacted.includes("sk-secret-123")) fail(`${what}: @switchboard/core/provider's redact did not redact`, line)
}
const program = join(project, "out", "stack.js")
const node24 = process.execPath
step(`node ${run(node24, ["--version"], { what: "node --version" }).trim()} out/stack.js (in-process simulator)`)
checkResult("Node 24", run(node24, [program], { cwd: project, env: userEnv, what: "the user program on Node 24", timeout: 60_000 }))

if (!args.has("--skip-node22")) {
  const probe = spawnSync("npx", ["-y", "node@22", "--version"], { cwd: project, env: userEnv, encoding: "utf8", timeout: 300_000 })
  if (probe.status === 0 && probe.stdout.startsWith("v22.")) {
    step(`node ${probe.stdout.trim()} (npx node@22) out/stack.js`)
    checkResult("Node 22", run("npx", ["-y", "node@22", program], { cwd: project, env: userEnv, what: "the user program on Node 22", timeout: 120_000 }))
  } else {
    console.log(`consumer: Node 22 not available from the registry here, skipped (${(probe.stderr ?? "").trim().split("\n").at(-1)})`)
  }
}

// 6. the switchboard-sim bin
step("starting node_modules/.bin/switchboard-sim --port 0")
const bin = join(project, "node_modules", ".bin", "switchboard-sim")
const child = spawn(bin, ["--port", "0", "--host", "127.0.0.1"], { cwd: project, env: userEnv, stdio: ["ignore", "pipe", "pipe"] })
let output = ""
const url = await new Promise<string>((resolve) => {
  const timer = setTimeout(() => {
    child.kill()
    fail("switchboard-sim did not print its URL within 20 s", output)
  }, 20_000)
  const onData = (chunk: Buffer) => {
    output += chunk.toString()
    const match = /listening on (http:\/\/\S+)/.exec(output)
    if (match !== null) {
      clearTimeout(timer)
      resolve(match[1]!)
    }
  }
  child.stdout.on("data", onData)
  child.stderr.on("data", onData)
  child.on("exit", (code) => fail(`switchboard-sim exited early (${code})`, output))
})
try {
  const models = await fetch(`${url}/openai/v1/models`, { headers: { authorization: "Bearer sk-test" } })
  if (!models.ok) fail(`switchboard-sim: GET /openai/v1/models answered ${models.status}`)
  step(`switchboard-sim at ${url}; running out/stack.js against it`)
  checkResult("against the bin", run(node24, [program], { cwd: project, env: { ...userEnv, SIM_URL: url }, what: "the user program against the switchboard-sim bin", timeout: 60_000 }))
} finally {
  child.removeAllListeners("exit")
  const exited = new Promise<boolean>((resolve) => {
    child.once("exit", () => resolve(true))
    setTimeout(() => resolve(false), 10_000).unref()
  })
  child.kill("SIGTERM")
  if (!(await exited)) {
    child.kill("SIGKILL")
    fail("switchboard-sim did not exit within 10 s of SIGTERM")
  }
}

if (!args.has("--keep")) rmSync(work, { recursive: true, force: true })
step(`PASS — ${tarballs.length} packages packed, installed with npm and used from plain node`)
