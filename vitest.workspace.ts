/**
 * The one Vitest config of the workspace: a project per package plus the
 * cross-package suite in `test/`. Run with `vitest run --config vitest.workspace.ts`.
 */
import { defineConfig } from "vitest/config"

const packages = ["core", "sim", "openai", "anthropic", "google", "bedrock", "config", "redis", "otel", "gateway"] as const

export default defineConfig({
  test: {
    projects: [
      ...packages.map((name) => ({
        test: {
          name,
          root: `packages/${name}`,
          include: ["test/**/*.test.ts"],
          testTimeout: 30_000
        }
      })),
      {
        test: {
          name: "e2e",
          root: "test",
          include: ["**/*.test.ts"],
          testTimeout: 60_000
        }
      }
    ]
  }
})
