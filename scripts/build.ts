/**
 * Builds every package to its `dist/`: JavaScript, `.d.ts`, declaration maps
 * and source maps, with `tsc -b tsconfig.build.json` (project references, so
 * each package is compiled against the declarations of the ones it depends on).
 *
 * The workspace itself never needs this: tests, `pnpm demo` and the scripts run
 * the sources through the `@switchboard/source` export condition. The build is
 * for the tarballs (`pnpm release`, the consumer test).
 *
 * `tsc` keeps relative `.ts` specifiers in declaration files
 * (`rewriteRelativeImportExtensions` rewrites only the JavaScript), so they are
 * rewritten to `.js` here: older TypeScript versions and other tools resolve
 * declarations through the `.js` path. The rewrite keeps every column, so the
 * declaration maps stay exact.
 */
import { spawnSync } from "node:child_process"
import { copyFileSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs"
import { join } from "node:path"

const root = join(import.meta.dirname, "..")
const packages = readdirSync(join(root, "packages")).filter((name) =>
  statSync(join(root, "packages", name, "tsconfig.build.json"), { throwIfNoEntry: false })?.isFile() === true
)

for (const name of packages) {
  rmSync(join(root, "packages", name, "dist"), { recursive: true, force: true })
  rmSync(join(root, "packages", name, "tsconfig.build.tsbuildinfo"), { force: true })
}

const tsc = join(root, "node_modules", ".bin", "tsc")
const result = spawnSync(tsc, ["-b", "tsconfig.build.json"], { cwd: root, stdio: "inherit" })
if (result.status !== 0) {
  console.error("build: tsc -b failed")
  process.exit(1)
}

const relativeTs = /(from\s+|import\s*\(\s*|import\s+)(["'])(\.\.?\/[^"']*)\.ts\2/g
const walk = (dir: string): Array<string> =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)]
  )
let rewritten = 0
for (const name of packages) {
  const dist = join(root, "packages", name, "dist")
  for (const file of walk(dist)) {
    if (!file.endsWith(".d.ts")) continue
    const text = readFileSync(file, "utf8")
    const next = text.replace(relativeTs, (_, lead: string, quote: string, path: string) => `${lead}${quote}${path}.js${quote}`)
    if (next !== text) {
      writeFileSync(file, next)
      rewritten++
    }
  }
  copyFileSync(join(root, "LICENSE"), join(root, "packages", name, "LICENSE"))
}
console.log(`build: ${packages.length} packages built to dist/ (${rewritten} declaration files had .ts specifiers rewritten)`)
