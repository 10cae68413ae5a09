#!/usr/bin/env node
/**
 * `switchboard serve <module> [--port] [--host]`: see `src/Cli.ts`.
 */
import { NodeRuntime, NodeServices } from "@effect/platform-node"
import { Effect, Layer, Logger } from "effect"
import { Cli } from "@switchboard/gateway"

Cli.run.pipe(
  Effect.provide(Layer.mergeAll(NodeServices.layer, Logger.layer([Logger.consoleJson]))),
  NodeRuntime.runMain({ teardown: (exit, onExit) => onExit(Cli.exitCode(exit)) })
)
