#!/usr/bin/env node
/**
 * The workspace entry of `switchboard-sim` (run from source by Node 24); the
 * published bin is the compiled `dist/bin/switchboard-sim.js`.
 *
 * @since 0.1.0
 */
import "../src/bin/switchboard-sim.ts"
