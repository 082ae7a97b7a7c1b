/**
 * Builds the script every sandbox evaluates first: guest/guest.ts with Yjs and
 * lib0 inlined (esbuild, browser build, one IIFE), so a handler gets a real
 * Y.Doc made inside its own isolate. Built once per process, on first use.
 */
import { fileURLToPath } from 'node:url';

/**
 * A bare V8 context has no Web Crypto. lib0 reads `crypto.getRandomValues` when it
 * loads, for client ids; Math.random is enough for those (they are not secrets).
 */
const PRELUDE = `globalThis.crypto = Object.freeze({ subtle: undefined, getRandomValues(a) {
  for (let i = 0; i < a.length; i++) a[i] = Math.floor(Math.random() * 256);
  return a; } });`;

let built: Promise<string> | undefined;

export const guestScript = (): Promise<string> =>
  // esbuild is loaded on first use, off the start's critical path.
  (built ??= import('esbuild')
    .then((esbuild) =>
      esbuild.build({
        entryPoints: [fileURLToPath(new URL('./guest/guest.js', import.meta.url))],
        bundle: true,
        format: 'iife',
        platform: 'browser',
        target: 'es2022',
        minify: true,
        banner: { js: PRELUDE },
        write: false,
        logLevel: 'silent',
      }),
    )
    .then((out) => {
      const text = out.outputFiles[0]?.text;
      if (text === undefined) throw new Error('esbuild produced no guest script');
      return text;
    }));
