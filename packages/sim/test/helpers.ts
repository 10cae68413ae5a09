/**
 * Shared helpers for the sim tests: SDK clients pointed at a running sim, and
 * a way to get a rejection as a value.
 */
import Anthropic from "@anthropic-ai/sdk"
import { BedrockRuntimeClient } from "@aws-sdk/client-bedrock-runtime"
import { GoogleGenAI } from "@google/genai"
import { Effect } from "effect"
import OpenAI from "openai"
import type { SimConfig } from "../src/Config.ts"

export const openaiClient = (url: string, name = "openai", apiKey = "sk-test") =>
  new OpenAI({ apiKey, baseURL: `${url}/${name}/v1`, maxRetries: 0 })

export const anthropicClient = (url: string, name = "anthropic", apiKey = "sk-ant-test") =>
  new Anthropic({ apiKey, baseURL: `${url}/${name}`, maxRetries: 0 })

export const geminiClient = (url: string, name = "gemini", apiKey = "AIza-test", headers: Record<string, string> = {}) =>
  new GoogleGenAI({ apiKey, httpOptions: { baseUrl: `${url}/${name}`, headers } })

export const bedrockClient = (url: string, name = "bedrock", accessKeyId = "AKIDTEST", headers: Record<string, string> = {}) => {
  const client = new BedrockRuntimeClient({
    region: "us-east-1",
    endpoint: `${url}/${name}`,
    credentials: { accessKeyId, secretAccessKey: "secret" },
    maxAttempts: 1
  })
  if (Object.keys(headers).length > 0) {
    client.middlewareStack.add(
      (next) => (args) => {
        const request = args.request as { headers: Record<string, string> }
        Object.assign(request.headers, headers)
        return next(args)
      },
      { step: "build", name: "simHeaders" }
    )
  }
  return client
}

/** Runs a promise and returns its rejection (fails the test if it resolves). */
export const rejection = <A>(p: () => Promise<A>): Effect.Effect<any> =>
  Effect.promise(() =>
    p().then(
      (value) => {
        throw new Error(`expected a rejection, got ${JSON.stringify(value).slice(0, 200)}`)
      },
      (error: unknown) => error
    )
  )

export const call = <A>(p: () => Promise<A>): Effect.Effect<A> => Effect.promise(p)

export const config = (overrides: Partial<Record<string, unknown>> = {}): SimConfig => ({
  providers: {
    openai: {
      protocol: "openai",
      models: [
        { id: "gpt-4o-mini", contextWindow: 2_000, maxOutput: 500 },
        { id: "gpt-4o", contextWindow: 128_000, maxOutput: 16_384 }
      ],
      ...overrides
    },
    anthropic: {
      protocol: "anthropic",
      models: [{ id: "claude-haiku-4-5", contextWindow: 2_000, maxOutput: 500 }],
      ...overrides
    },
    gemini: {
      protocol: "gemini",
      models: [{ id: "gemini-2.5-flash", contextWindow: 2_000, maxOutput: 500 }],
      ...overrides
    },
    bedrock: {
      protocol: "bedrock",
      models: [{ id: "us.amazon.nova-micro-v1:0", contextWindow: 2_000, maxOutput: 500 }],
      ...overrides
    }
  }
} as SimConfig)

export const longText = (tokens: number) => Array.from({ length: tokens }, () => "hello").join(" ")

export const weatherSchema = {
  type: "object",
  properties: { city: { type: "string" }, days: { type: "integer" }, unit: { type: "string", enum: ["c", "f"] } },
  required: ["city", "days", "unit"]
}
