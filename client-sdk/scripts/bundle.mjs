// Builds the browser bundle: one ESM file with the SDK, yjs, y-protocols and lib0
// (and y-indexeddb, loaded only when `persistence: 'indexeddb'` is used).
// Writes dist/stateweave-client.js and its esbuild metafile next to it.
import { build } from 'esbuild';
import { writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const result = await build({
  absWorkingDir: root,
  entryPoints: ['src/bundle.ts'],
  outfile: 'dist/stateweave-client.js',
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  minify: true,
  sourcemap: true,
  metafile: true,
  legalComments: 'linked',
  logLevel: 'warning',
});
await writeFile(
  `${root}dist/stateweave-client.meta.json`,
  JSON.stringify(result.metafile, null, 2),
);
const bytes = Object.values(result.metafile.outputs).find((o) => o.entryPoint)?.bytes ?? 0;
console.log(`dist/stateweave-client.js: ${(bytes / 1024).toFixed(1)} KiB`);
