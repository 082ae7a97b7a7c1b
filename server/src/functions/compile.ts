/**
 * Turns function source files into bundles: each `*.ts` / `*.js` file of a
 * directory becomes one CommonJS bundle (esbuild) with its own imports inlined,
 * except `yjs` and `@stateweave/server[/define]`, which the sandbox provides. Used at start
 * (`--functions DIR`) and by `stateweave deploy` before uploading.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { DEFINE_MODULES } from './define.js';

export interface SourceBundle {
  /** The file it came from, relative to the directory. */
  readonly file: string;
  readonly code: string;
  /** Document patterns its functions may touch (scope.ts). @default node-wide */
  readonly scope?: readonly string[];
}

const isSource = (file: string): boolean =>
  /\.(ts|js|mts|mjs)$/.test(file) && !/\.d\.[mc]?ts$/.test(file) && !/\.test\./.test(file);

export const compileFile = async (path: string, file = path): Promise<SourceBundle> => {
  // esbuild is loaded on first use: a node that compiles nothing starts faster.
  const esbuild = await import('esbuild');
  const out = await esbuild.build({
    entryPoints: [path],
    bundle: true,
    format: 'cjs',
    platform: 'neutral',
    target: 'node20',
    mainFields: ['module', 'main'],
    external: ['yjs', ...DEFINE_MODULES],
    write: false,
    logLevel: 'silent',
  });
  const code = out.outputFiles[0]?.text;
  if (code === undefined) throw new Error(`${file}: esbuild produced no output`);
  return { file, code };
};

/** Every function source file directly in `dir`, compiled, in name order. */
export const compileDir = async (dir: string): Promise<SourceBundle[]> => {
  const files = (await readdir(dir)).filter(isSource).sort();
  return Promise.all(files.map((file) => compileFile(join(dir, file), file)));
};
