/**
 * The telemetry docs' example is the file `packages/otel/examples/telemetry.ts`
 * (type-checked with the otel package), word for word.
 */
import { readFileSync } from "node:fs"
import { assert, describe, it } from "@effect/vitest"

const read = (path: string) => readFileSync(new URL(path, import.meta.url), "utf8")

describe("docs/telemetry.md", () => {
  it("its example is the type-checked packages/otel/examples/telemetry.ts", () => {
    const block = /```ts\n([\s\S]*?)```/.exec(read("../packages/core/docs/telemetry.md"))?.[1]
    assert.strictEqual(block, read("../packages/otel/examples/telemetry.ts"))
  })
})
