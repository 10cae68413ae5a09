/**
 * The value of a `--name value` command-line flag of a benchmark script, or
 * `undefined` when the flag is not given.
 */
export const flag = (name: string, args: ReadonlyArray<string> = process.argv.slice(2)): string | undefined => {
  const at = args.indexOf(name)
  return at === -1 ? undefined : args[at + 1]
}
