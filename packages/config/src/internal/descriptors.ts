/**
 * Provider packages loaded by name: `type: bedrock` imports
 * `@switchboard/bedrock` and reads its `descriptor` export. A package that
 * is not installed is reported with the command that installs it.
 *
 * @internal
 */
import type { Descriptor as D } from "@switchboard/core/provider"
import { Effect } from "effect"

export type Descriptor = D.ProviderDescriptor

const packages: Record<string, string> = {
  "openai": "@switchboard/openai",
  "openai-compatible": "@switchboard/openai",
  "anthropic": "@switchboard/anthropic",
  "google": "@switchboard/google",
  "vertex": "@switchboard/google",
  "bedrock": "@switchboard/bedrock"
}

export const packageFor = (type: string): string => packages[type] ?? `@switchboard/${type}`

const isDescriptor = (u: unknown): u is Descriptor =>
  typeof u === "object" && u !== null && "specVersion" in u && u.specVersion === 1 && "build" in u &&
  typeof u.build === "function" && "clientOptions" in u && "types" in u

const cache = new Map<string, Descriptor | undefined>()

/** The descriptor serving `type`, or undefined when its package is not installed (or exports none). */
export const loadDescriptor = (type: string): Effect.Effect<Descriptor | undefined> =>
  Effect.promise(async () => {
    const name = packageFor(type)
    if (cache.has(name)) return cache.get(name)
    let found: Descriptor | undefined
    try {
      const module: unknown = await import(name)
      const candidate = typeof module === "object" && module !== null && "descriptor" in module ? module.descriptor : undefined
      found = isDescriptor(candidate) && candidate.types.includes(type) ? candidate : undefined
    } catch {
      found = undefined
    }
    cache.set(name, found)
    return found
  })
