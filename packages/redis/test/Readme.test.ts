import { execFileSync } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll, assert, beforeAll, describe, it } from "vitest"
import { type RedisServer, startRedis } from "./redisServer.ts"

let server: RedisServer
beforeAll(async () => {
  server = await startRedis()
})
afterAll(async () => {
  await server.stop()
})

const here = path.dirname(fileURLToPath(import.meta.url))

describe("packages/redis/README.md", () => {
  it("the example runs as written (on this test's Redis): a call goes through and its budget lives in Redis", async () => {
    const readme = readFileSync(path.join(here, "..", "README.md"), "utf8")
    const example = /```ts\n([\s\S]*?)```/.exec(readme)?.[1]
    assert.isDefined(example)
    const program = example!.replace("redis://127.0.0.1:6379", server.url) + `
import { Effect as E } from "effect"
const text = await E.runPromise(Llm.generateText("hello").pipe(E.provide(stack)))
console.log(JSON.stringify({ text }))
`
    // Next to the package, so "@switchboard/*" resolve as they do for a user.
    const dir = mkdtempSync(path.join(here, ".readme-"))
    try {
      const file = path.join(dir, "example.ts")
      writeFileSync(file, program)
      const out = execFileSync(process.execPath, ["--conditions=@switchboard/source", file], { encoding: "utf8", timeout: 30_000 })
      assert.deepStrictEqual(JSON.parse(out.trim().split("\n").pop()!), { text: "hi" })
      assert.strictEqual((await server.command("EXISTS", "myapp:b:r:api:global")).trim(), ":1")
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }, 40_000)
})
