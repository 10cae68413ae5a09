#!/usr/bin/env node
/**
 * `switchboard serve <module> [--port] [--host]`: see `../Cli.ts`.
 */
import { NodeRuntime, NodeServices } from "@effect/platform-node"
import { Effect, Layer, Logger } from "effect"
import { Cli } from "../index.ts"

Cli.run.pipe(
  Effect.provide(Layer.mergeAll(NodeServices.layer, Logger.layer([Logger.consoleJson]))),
  NodeRuntime.runMain({ teardown: (exit, onExit) => onExit(Cli.exitCode(exit)) })
)
