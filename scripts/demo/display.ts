/**
 * What the demo shows while it runs: a live progress bar on a terminal
 * (cli-progress), plain progress lines otherwise, and the log of what the
 * stack did (switches, breaker changes, retries, budget) with repeated lines
 * folded: within each stretch of the run, a line that happens again is
 * printed once, with how many times it happened (`×12`).
 */
import { MultiBar, Presets } from "cli-progress"

/** The live view of one run. */
export interface Display {
  /** A new phase of the workload starts. */
  readonly phase: (name: string, size: number) => void
  /** Something the stack did: folded with its repeats until the next stretch ends. */
  readonly event: (line: string) => void
  /** One more request ended. */
  readonly tick: () => void
  /** Prints what is pending and stops the bar. */
  readonly stop: () => void
}

/** A stretch's lines, in first-seen order, each with how often it happened. */
const makeFolder = () => {
  const pending = new Map<string, number>()
  return {
    add: (line: string) => void pending.set(line, (pending.get(line) ?? 0) + 1),
    drain: (): ReadonlyArray<string> => {
      const lines = [...pending].map(([line, n]) => n > 1 ? `${line}  ×${n}` : line)
      pending.clear()
      return lines
    }
  }
}

/**
 * A display for `total` requests. `tty` picks the live bar; otherwise a
 * progress line is printed every tenth of the run.
 */
export const make = (total: number, tty: boolean): Display => {
  const folder = makeFolder()
  let done = 0
  let phaseName = ""
  // A stretch ends every twentieth of the run (a tenth without a terminal) and at each phase's end.
  const stride = Math.max(1, Math.round(total / (tty ? 20 : 10)))

  if (!tty) {
    const flush = () => {
      for (const line of folder.drain()) console.log(line)
    }
    return {
      phase: (name, size) => {
        flush()
        phaseName = name
        console.log(`  ▸ ${name} (${size} request${size === 1 ? "" : "s"})`)
      },
      event: folder.add,
      tick: () => {
        done++
        if (done % stride === 0 || done === total) {
          flush()
          console.log(`    progress: ${done}/${total} (${phaseName.split(":")[0]})`)
        }
      },
      stop: flush
    }
  }

  const bars = new MultiBar({
    // The bar, the log above it and the report all go to stdout (cli-progress defaults to stderr).
    stream: process.stdout,
    format: "  {bar} {value}/{total} requests | {phase}",
    hideCursor: true,
    clearOnComplete: false,
    stopOnComplete: false,
    barsize: 30,
    etaBuffer: 50
  }, Presets.shades_classic)
  const bar = bars.create(total, 0, { phase: "" })
  const flush = () => {
    for (const line of folder.drain()) bars.log(`${line}\n`)
  }
  return {
    phase: (name, size) => {
      flush()
      phaseName = name
      bars.log(`  ▸ ${name} (${size} request${size === 1 ? "" : "s"})\n`)
      bar.update({ phase: phaseName.split(":")[0] })
    },
    event: folder.add,
    tick: () => {
      done++
      if (done % stride === 0 || done === total) flush()
      bar.update(done, { phase: phaseName.split(":")[0] })
    },
    stop: () => {
      flush()
      bars.update()
      bars.stop()
    }
  }
}
