/**
 * The peers the bench compares against, loaded at run time from server/bench's own
 * node_modules (`npm run bench:peers`) — the reference server from server/bench/ref-current,
 * whose Yjs 14 must not meet Hocuspocus's Yjs 13 —, typed here by the few entry points the bench
 * calls. Why not imported: they are not installed where the type check runs
 * (`npm test`), and `@hocuspocus/server` declares Node ≥ 22, so they are not
 * workspace dependencies. The compiled bench runs from server/dist/bench, whose
 * module resolution would not look in server/bench/node_modules: the entry is
 * resolved from each package's `exports` (the `import` condition), as Node would.
 */
import type { IncomingMessage } from 'node:http';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { WebSocket } from 'ws';
import { BENCH_DIR } from './paths.js';

/** `@y/websocket-server/utils`: the connection handler its bin puts on a ws server. */
export interface WebsocketServerUtils {
  setupWSConnection(conn: WebSocket, req: IncomingMessage): void;
}

/** `@hocuspocus/server`: the server class, without extensions. */
export interface HocuspocusModule {
  Server: new (configuration: { port: number; address: string; quiet: boolean }) => {
    listen(): Promise<unknown>;
    readonly address?: { port: number } | undefined;
  };
}

type ExportTarget = string | null | { [condition: string]: ExportTarget } | ExportTarget[];

/** The file an `exports` target names under the conditions `import`, `node`, `default`. */
function pickImport(target: ExportTarget | undefined): string | undefined {
  if (typeof target === 'string') return target;
  if (!target || Array.isArray(target)) return undefined;
  for (const [condition, value] of Object.entries(target))
    if (condition === 'import' || condition === 'node' || condition === 'default') {
      const file = pickImport(value);
      if (file) return file;
    }
  return undefined;
}

/** Where the reference server is installed: its current release runs on the Yjs 14 prereleases. */
export const REFERENCE_DIR = join(BENCH_DIR, 'ref-current');

/** Imports `pkg` (and `subpath`, e.g. "./utils") from `root`'s node_modules. */
async function importPeer(pkg: string, subpath = '.', root = BENCH_DIR): Promise<unknown> {
  const dir = join(root, 'node_modules', pkg);
  let manifest: { exports?: ExportTarget; main?: string };
  try {
    manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as typeof manifest;
  } catch {
    throw new Error(`${pkg} is not installed in ${root}: run npm run bench:peers`);
  }
  const exportsMap = manifest.exports;
  const target =
    exportsMap &&
    typeof exportsMap === 'object' &&
    !Array.isArray(exportsMap) &&
    subpath in exportsMap
      ? exportsMap[subpath]
      : subpath === '.'
        ? exportsMap
        : undefined;
  const file = pickImport(target) ?? (subpath === '.' ? manifest.main : undefined);
  if (!file) throw new Error(`${pkg}: no import entry for ${subpath}`);
  return import(pathToFileURL(join(dir, file)).href);
}

const hasFunction = (mod: unknown, name: string): boolean =>
  typeof mod === 'object' &&
  mod !== null &&
  typeof (mod as Record<string, unknown>)[name] === 'function';

export async function loadWebsocketServerUtils(): Promise<WebsocketServerUtils> {
  const mod = await importPeer('@y/websocket-server', './utils', REFERENCE_DIR);
  if (!hasFunction(mod, 'setupWSConnection'))
    throw new Error('@y/websocket-server/utils has no setupWSConnection');
  return mod as WebsocketServerUtils;
}

export async function loadHocuspocus(): Promise<HocuspocusModule> {
  const mod = await importPeer('@hocuspocus/server');
  if (!hasFunction(mod, 'Server')) throw new Error('@hocuspocus/server has no Server');
  return mod as HocuspocusModule;
}
