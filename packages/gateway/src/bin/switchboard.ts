#!/usr/bin/env node
/**
 * `switchboard serve|check|models`: see `../Cli.ts`. Errors are printed by
 * the command itself (a config error as its paths, never a stack trace).
 */
import { NodeRuntime, NodeServices } from "@effect/platform-node"
import { Effect, Layer, Logger } from "effect"
import { Cli } from "../index.ts"

Cli.run.pipe(
  Effect.provide(Layer.mergeAll(NodeServices.layer, Logger.layer([Logger.consoleJson]))),
  NodeRuntime.runMain({ disableErrorReporting: true, teardown: (exit, onExit) => onExit(Cli.exitCode(exit)) })
)
