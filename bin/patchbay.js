#!/usr/bin/env node
// Thin launcher: the compiled CLI lives in dist/ (built by `npm ci` through `prepare`).
import { setFlagsFromString } from 'node:v8';

// Before anything else loads: a regular expression that backtracks too much (`/^(a|aa)+$/` on
// 45 characters of event data backtracks for 90 s) switches to V8's linear-time engine when that
// engine can run it. V8 reads the flag when a regular expression runs, and the engine sets it
// again when its mapping module loads (engine/mapping/evaluate.ts), for embedders without this
// launcher. Static imports would run first, hence the dynamic import below.
setFlagsFromString('--enable-experimental-regexp-engine-on-excessive-backtracks');

const { main } = await import('../dist/cli/main.js');

// `patchbay validate | head` closes the pipe early: that is the reader's choice, not an error.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error) => {
    if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw error;
  });
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error) => {
    process.stderr.write(`patchbay: internal error: ${error instanceof Error ? error.stack : String(error)}\n`);
    process.exitCode = 2;
  },
);
