/**
 * `pnpm demo` end to end: the script starts the simulator, runs its few
 * hundred requests through the full stack and must end with a clean verdict.
 */
import { describe, expect, it } from "@effect/vitest"
import { spawnSync } from "node:child_process"
import { fileURLToPath } from "node:url"

describe("pnpm demo", () => {
  it("runs every request to an answer or a typed error and reports it", () => {
    const script = fileURLToPath(new URL("../scripts/demo.ts", import.meta.url))
    const result = spawnSync(process.execPath, [script, "--requests", "200"], { encoding: "utf8", timeout: 90_000 })
    expect(result.status, result.stderr).toBe(0)
    expect(result.stdout).toMatch(/VERDICT: all \d+ requests ended — \d+ answered, \d+ failed with a typed LlmError, 0 lost/)
    expect(result.stdout).toContain("Per provider")
    expect(result.stdout).toMatch(/switch openai\/gpt-4o-mini → anthropic/)
    expect(result.stdout).toMatch(/from cache: [1-9]/)
  }, 120_000)
})
