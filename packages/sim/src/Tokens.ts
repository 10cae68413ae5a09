/**
 * Token counting and deterministic reply text for the simulator.
 *
 * Every protocol counts with the same real tokenizer (`gpt-tokenizer`,
 * `o200k_base`), so a given prompt costs the same number of tokens on every
 * run. Chat prompts follow the OpenAI cookbook formula: each message costs its
 * content tokens plus 3, and every prompt adds 3 for the reply primer. Other
 * protocols reuse the same count (a documented estimate, not their vendor's
 * tokenizer). Replies are made of words that are each exactly one token, so the
 * completion token count is the number of words.
 *
 * @since 0.1.0
 */
import { countTokens as count, encode } from "gpt-tokenizer"
import { BoundedCache, prng } from "./internal/util.ts"

const candidates = (
  "the quick brown fox over lazy dog river stone light cloud green field music water forest market window " +
  "paper garden story simple bright silver summer winter bridge signal engine people system number moment " +
  "friend answer question travel letter voice table street planet orange yellow purple circle square thread " +
  "pattern record future castle dream spring wonder quiet rapid steady north south east west small large " +
  "early late happy calm clear warm cold fresh open close first last good new old long short high low " +
  "bird tree leaf rain snow wind fire earth metal glass wood sand road path door house city town hill lake " +
  "sea star moon sun day night time year world life hand eye heart mind word book line page note song"
).split(" ")

/**
 * The fixed word list replies are drawn from; every entry encodes to exactly
 * one token with and without a leading space.
 *
 * @since 0.1.0
 * @category constants
 */
export const words: ReadonlyArray<string> = candidates.filter((w) =>
  encode(" " + w).length === 1 && encode(w).length === 1
)

const cache = new BoundedCache<string, number>(20_000)

/**
 * Counts the tokens of a text with `o200k_base`, memoised so repeated prompts
 * are tokenised once.
 *
 * @since 0.1.0
 * @category tokens
 */
export const countTokens = (text: string): number => {
  if (text.length === 0) return 0
  const hit = cache.get(text)
  if (hit !== undefined) return hit
  const n = count(text)
  cache.set(text, n)
  return n
}

/**
 * Tokens of a chat prompt: `sum(tokens(message) + 3) + 3` (OpenAI cookbook
 * formula), plus the tokens of the JSON of any tool definitions.
 *
 * @since 0.1.0
 * @category tokens
 */
export const promptTokens = (messages: ReadonlyArray<string>, toolsJson?: string | undefined): number => {
  let n = 3
  for (const m of messages) n += countTokens(m) + 3
  if (toolsJson !== undefined && toolsJson.length > 0) n += countTokens(toolsJson)
  return n
}

/**
 * The deterministic reply for a request hash: between 8 and 31 words from
 * {@link words}. The first word has no leading space; the rest do, so each
 * array element is one token and `join("")` is the reply text.
 *
 * @since 0.1.0
 * @category text
 */
export const replyPieces = (seed: number): ReadonlyArray<string> => {
  const rnd = prng(seed)
  const n = 8 + Math.floor(rnd() * 24)
  const out: Array<string> = []
  for (let i = 0; i < n; i++) {
    const w = words[Math.floor(rnd() * words.length)]!
    out.push(i === 0 ? w : " " + w)
  }
  return out
}
