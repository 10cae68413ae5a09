/**
 * Type-checks every package (sources and tests), the cross-package tests,
 * the scripts and the examples, one `tsc -p` per project, then every JSDoc and
 * README example (`scripts/check-docs.ts`); fails if any of them fails.
 */
import { spawnSync } from "node:child_process"
import { existsSync, readdirSync } from "node:fs"
import { join } from "node:path"

const root = join(import.meta.dirname, "..")
const projects = [
  ...readdirSync(join(root, "packages")).map((name) => join("packages", name)),
  "test",
  "scripts",
  "examples"
].filter((dir) => existsSync(join(root, dir, "tsconfig.json")))

const tsc = join(root, "node_modules", ".bin", "tsc")
let failed = 0
for (const project of projects) {
  const result = spawnSync(tsc, ["-p", project], { cwd: root, stdio: "inherit" })
  if (result.status !== 0) {
    failed++
    console.error(`typecheck failed: ${project}`)
  }
}
const docs = spawnSync(process.execPath, [join(root, "scripts", "check-docs.ts")], { cwd: root, stdio: "inherit" })
if (docs.status !== 0) {
  failed++
  console.error("typecheck failed: docs examples (scripts/check-docs.ts)")
}
if (failed > 0) process.exit(1)
console.log(`typecheck: ${projects.length} projects and the docs examples clean`)
