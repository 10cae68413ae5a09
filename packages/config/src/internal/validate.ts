/**
 * Cross-references a decoded file: every name a route, model, limit or key
 * uses must exist; `onSoft` must not lead back to its own route; the block
 * options are decoded by the combinators' own Schemas. Every problem is
 * collected, none stops the others.
 *
 * @internal
 */
import type { SwitchboardConfigError } from "@switchboard/core"
import type { File, Route } from "./format.ts"

type Issue = SwitchboardConfigError.ConfigIssue & { readonly at: ReadonlyArray<PropertyKey> }

const known = (names: Iterable<string>): string => {
  const list = [...names]
  return list.length === 0 ? "none defined" : `known: ${list.join(", ")}`
}

/** Names a route reaches directly (models), for reference checks. */
export const routeModels = (route: Route): ReadonlyArray<{ readonly name: string; readonly at: ReadonlyArray<PropertyKey> }> => {
  if ("fallback" in route) return route.fallback.map((name, index) => ({ name, at: ["fallback", index] }))
  if ("model" in route) return [{ name: route.model, at: ["model"] }]
  const out: Array<{ readonly name: string; readonly at: ReadonlyArray<PropertyKey> }> = route.router.candidates.map((
    candidate,
    index
  ) => ({ name: typeof candidate === "string" ? candidate : candidate.name, at: ["router", "candidates", index] }))
  return out
}

export const crossCheck = (file: File): ReadonlyArray<Issue> => {
  const issues: Array<Issue> = []
  const push = (at: ReadonlyArray<PropertyKey>, message: string) => issues.push({ path: "", at, message })
  const providers = Object.keys(file.providers)
  const models = Object.keys(file.models)
  const routes = Object.keys(file.routes)

  for (const [name, model] of Object.entries(file.models)) {
    if (!(model.provider in file.providers)) {
      push(["models", name, "provider"], `unknown provider "${model.provider}"; ${known(providers)}`)
    }
  }
  for (const [name, route] of Object.entries(file.routes)) {
    for (const ref of routeModels(route)) {
      if (!(ref.name in file.models)) {
        push(["routes", name, ...ref.at], `unknown model "${ref.name}"; ${known(models)}`)
      }
    }
    if ("fallback" in route && route.fallback.length === 0) {
      push(["routes", name, "fallback"], "a fallback chain needs at least one model")
    }
    if ("router" in route) {
      const router = route.router
      if (router.candidates.length === 0) push(["routes", name, "router", "candidates"], "a router needs at least one candidate")
      const candidateNames = new Set(router.candidates.map((c) => typeof c === "string" ? c : c.name))
      if (router.strategy === "byTask") {
        if (router.tasks === undefined) push(["routes", name, "router", "tasks"], "strategy byTask needs `tasks`")
        else if (!("default" in router.tasks)) {
          push(["routes", name, "router", "tasks"], "strategy byTask needs a `default` entry in `tasks`")
        }
      }
      for (const [task, list] of Object.entries(router.tasks ?? {})) {
        list.forEach((candidate, index) => {
          if (!candidateNames.has(candidate)) {
            push(
              ["routes", name, "router", "tasks", task, index],
              `"${candidate}" is not a candidate of this router; ${known(candidateNames)}`
            )
          }
        })
      }
      if (router.strategy === "weighted") {
        router.candidates.forEach((candidate, index) => {
          const weight = typeof candidate === "string" ? undefined : candidate.weight
          if (weight === undefined) {
            push(["routes", name, "router", "candidates", index], "strategy weighted needs a `weight` on every candidate")
          } else if (!(Number.isFinite(weight) && weight > 0)) {
            push(["routes", name, "router", "candidates", index, "weight"], `expected a finite number > 0, got ${weight}`)
          }
        })
      }
    }
  }

  const budget = file.limits?.budget
  const onSoft = budget?.["onSoft"]
  if (onSoft !== undefined) {
    if (typeof onSoft !== "string" || !(onSoft in file.routes)) {
      push(["limits", "budget", "onSoft"], `unknown route ${JSON.stringify(onSoft)}; ${known(routes)}`)
    } else if (budget?.["softAt"] === undefined) {
      push(["limits", "budget", "softAt"], "`onSoft` needs `softAt` (the share of the limit, e.g. 0.8)")
    }
  }

  for (const [index, key] of (file.gateway?.keys ?? []).entries()) {
    for (const [at, route] of (key.routes ?? []).entries()) {
      if (!(route in file.routes)) push(["gateway", "keys", index, "routes", at], `unknown route "${route}"; ${known(routes)}`)
    }
  }
  const tenants = new Map<string, number>()
  for (const [index, key] of (file.gateway?.keys ?? []).entries()) {
    const first = tenants.get(key.key)
    if (first !== undefined) push(["gateway", "keys", index, "key"], `the same key as gateway.keys[${first}]`)
    else tenants.set(key.key, index)
  }
  return issues
}
