/**
 * The one Vitest config of the workspace: a project per package plus the
 * cross-package suite in `test/`. Run with `vitest run --config vitest.workspace.ts`.
 *
 * Tests run the packages from source: the `@switchboard/source` export
 * condition (first in every package's `exports`) points at `src/*.ts`, so no
 * build step is needed and a stale `dist/` is never picked up. Child processes
 * the tests spawn (`node scripts/demo.ts`, the sim bin) get the same condition
 * through `NODE_OPTIONS`.
 */
import { defineConfig } from "vitest/config"

const packages = ["core", "sim", "openai", "anthropic", "google", "bedrock", "config", "redis", "otel", "gateway"] as const

const source = "@switchboard/source"
// Vitest also hands `ssr.resolve.conditions` to its workers as `--conditions`,
// so no bundler-only condition (`module`) goes here.
const conditions = [source, "node", "development|production"]
const resolve = { conditions }
const nodeOptions = [process.env["NODE_OPTIONS"], `--conditions=${source}`].filter(Boolean).join(" ")

const project = (test: { name: string; root: string; include: Array<string>; testTimeout: number }) => ({
  resolve,
  ssr: { resolve },
  test: { ...test, env: { NODE_OPTIONS: nodeOptions } }
})

export default defineConfig({
  test: {
    projects: [
      ...packages.map((name) =>
        project({
          name,
          root: `packages/${name}`,
          include: ["test/**/*.test.ts"],
          testTimeout: 30_000
        })
      ),
      project({
        name: "e2e",
        root: "test",
        include: ["**/*.test.ts"],
        testTimeout: 60_000
      })
    ]
  }
})
