#!/usr/bin/env -S node --no-node-snapshot
// The `stateweave` command as npm links it. npm links bins at install time, before
// anything is built, so in a fresh clone this entry builds the server once (tsc -b)
// and then runs it; an installed package ships dist/ and goes straight on.
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const main = new URL('../dist/src/main.js', import.meta.url);
if (!existsSync(fileURLToPath(main))) {
  const require = createRequire(import.meta.url);
  let tsc;
  try {
    tsc = require.resolve('typescript/bin/tsc');
  } catch {
    console.error('stateweave: the server is not built and TypeScript is missing: run npm install');
    process.exit(1);
  }
  console.error('stateweave: building the server once (tsc -b)…');
  const project = fileURLToPath(new URL('..', import.meta.url));
  const built = spawnSync(process.execPath, [tsc, '-b', project], { stdio: 'inherit' });
  if (built.status !== 0) {
    console.error('stateweave: the build failed (see above); run npm run build for details');
    process.exit(1);
  }
}
await import(main.href);
