import { Context, Effect, Stream } from "effect"
import * as Streams from "../../../packages/core/src/internal/streams.ts"
class Tag extends Context.Service<Tag, { n: number }>()("Tag") {}
const base = () => Stream.fromArrays([1, 2], [3, 4])
const variants: Record<string, (s: Stream.Stream<number>) => Stream.Stream<number>> = {
  none: (s) => s,
  mapArray: (s) => Stream.mapArray(s, (a) => a),
  map: (s) => Stream.map(s, (a) => a),
  onExit: (s) => Streams.onExit(s, () => Effect.void),
  StreamOnExit: (s) => Stream.onExit(s, () => Effect.void),
  unwrap: (s) => Stream.unwrap(Effect.succeed(s)),
  lazy: (s) => Streams.lazy(() => s),
  catch: (s) => Stream.catch(s, () => Stream.empty),
  provideService: (s) => Stream.provideService(s, Tag, { n: 1 }) as never,
  failAtEnd: (s) => Streams.failAtEnd(s, () => undefined) as never,
  mapArrayEffect: (s) => Stream.mapArrayEffect(s, (a) => Effect.succeed(a)) as never,
  tapError: (s) => Stream.tapError(s, () => Effect.void),
}
const n = 20000
for (let round = 0; round < 3; round++) {
  const out: Array<string> = []
  for (const [name, f] of Object.entries(variants)) {
    let s = base()
    for (let i = 0; i < 5; i++) s = f(s)
    const run = Effect.gen(function*() { for (let i = 0; i < n; i++) yield* Stream.runDrain(s) })
    Effect.runSync(run)
    const t0 = process.cpuUsage()
    Effect.runSync(run)
    const c = process.cpuUsage(t0)
    out.push(`${name} ${((c.user + c.system) / n / 5).toFixed(2)}`)
  }
  console.log(out.join(" | "))
}
