/**
 * Shared helpers: a Bedrock client and model layer pointed at a running
 * simulator, with per-test default headers (`x-sim-fault`, `x-sim-replay`).
 */
import { type LLM, LlmError } from "@switchboard/core"
import type { LlmRequest } from "@switchboard/core"
import type { Sim } from "@switchboard/sim"
import { Layer } from "effect"
import { Bedrock } from "../src/index.ts"

export const NOVA = "us.amazon.nova-micro-v1:0"
export const SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYDISTINCTSECRET"

export const clientLayer = (
  sim: Sim.SimHandle,
  options: Partial<Bedrock.ClientOptions> = {}
): Layer.Layer<Bedrock.BedrockClient> =>
  Layer.orDie(Bedrock.layerClient({
    region: "us-east-1",
    endpoint: sim.providerUrl("bedrock"),
    credentials: { accessKeyId: "AKIDTEST", secretAccessKey: SECRET },
    ...options
  }))

export const modelLayer = (
  sim: Sim.SimHandle,
  options: Partial<Bedrock.ClientOptions> = {},
  model: string = NOVA,
  defaults?: Partial<LlmRequest.LlmRequest>,
  modelOptions?: { readonly contentFilter?: "fail" | "return" }
): Layer.Layer<LLM | Bedrock.BedrockClient> =>
  Bedrock.model(model, defaults, modelOptions).pipe(Layer.provideMerge(clientLayer(sim, options)))

export const fault = (value: string) => ({ headers: { "x-sim-fault": value } })
export const replay = (path: string) => ({ headers: { "x-sim-replay": path } })

export const user = (content: string): LlmRequest.LlmRequest => ({ messages: [{ role: "user", content }] })

export const isLlmError = LlmError.isLlmError
