import { assert, describe, it } from "@effect/vitest"
import * as fc from "fast-check"
import { Lru } from "../src/internal/lru.ts"

/** The plain model: a `Map` kept in recency order by deleting and setting again. */
class Model {
  readonly map = new Map<string, number>()
  readonly capacity: number
  constructor(capacity: number) {
    this.capacity = capacity
  }
  get(key: string) {
    const value = this.map.get(key)
    if (value === undefined) return undefined
    this.map.delete(key)
    this.map.set(key, value)
    return value
  }
  set(key: string, value: number) {
    this.map.delete(key)
    this.map.set(key, value)
    if (this.map.size > this.capacity) this.map.delete(this.map.keys().next().value!)
  }
  delete(key: string) {
    this.map.delete(key)
  }
}

const operation = fc.oneof(
  fc.record({ op: fc.constant("get" as const), key: fc.integer({ min: 0, max: 5 }) }),
  fc.record({ op: fc.constant("set" as const), key: fc.integer({ min: 0, max: 5 }), value: fc.integer() }),
  fc.record({ op: fc.constant("delete" as const), key: fc.integer({ min: 0, max: 5 }) })
)

describe("Lru", () => {
  it("keeps and drops exactly the keys a recency-ordered map would", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 4 }), fc.array(operation, { maxLength: 80 }), (capacity, operations) => {
        const lru = new Lru<number>(capacity)
        const model = new Model(capacity)
        for (const step of operations) {
          const key = `k${step.key}`
          if (step.op === "get") assert.strictEqual(lru.get(key), model.get(key))
          else if (step.op === "set") {
            lru.set(key, step.value)
            model.set(key, step.value)
          } else {
            lru.delete(key)
            model.delete(key)
          }
          assert.strictEqual(lru.size, model.map.size)
        }
        // Every key the model holds is there with its value, and nothing else.
        for (let key = 0; key < 6; key++) assert.strictEqual(lru.get(`k${key}`), model.get(`k${key}`))
      }),
      { numRuns: 1000 }
    )
  })

  it("a read makes a key the most recently used", () => {
    const lru = new Lru<number>(2)
    lru.set("a", 1)
    lru.set("b", 2)
    lru.get("a")
    lru.set("c", 3)
    assert.deepStrictEqual([lru.get("a"), lru.get("b"), lru.get("c")], [1, undefined, 3])
  })
})
