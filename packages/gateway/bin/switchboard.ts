#!/usr/bin/env node
// The workspace entry of the `switchboard` CLI (the published bin is dist/bin/switchboard.js).
import "../src/bin/switchboard.ts"
