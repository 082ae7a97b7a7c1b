/**
 * `stateweave serve` flags. One table: each flag, its environment variable
 * (STATEWEAVE_<FLAG>), its type and help. The README's configuration table is
 * this table. Flags win over the environment, which wins over the defaults.
 */
import { parseArgs } from 'node:util';
import { DEFAULTS, type ServerOptions } from './server.js';

type Kind = 'int' | 'string' | 'bool';

interface Flag {
  readonly flag: string;
  readonly option: keyof ServerOptions | 'logLevel';
  readonly kind: Kind;
  readonly help: string;
  readonly default: string;
}

export const SERVE_FLAGS: readonly Flag[] = [
  { flag: 'port', option: 'port', kind: 'int', help: 'TCP port (0 = any free port)', default: String(DEFAULTS.port) },
  { flag: 'host', option: 'host', kind: 'string', help: 'interface to bind', default: DEFAULTS.host },
  { flag: 'data', option: 'dataDir', kind: 'string', help: 'LevelDB data directory', default: DEFAULTS.dataDir },
  { flag: 'fsync', option: 'fsync', kind: 'bool', help: 'fsync every write batch (power-loss safe)', default: String(DEFAULTS.fsync) },
  { flag: 'idle-unload-ms', option: 'idleUnloadMs', kind: 'int', help: 'unload a document this long after its last client left', default: String(DEFAULTS.idleUnloadMs) },
  { flag: 'max-frame-bytes', option: 'maxFrameBytes', kind: 'int', help: 'largest WebSocket frame / HTTP body', default: String(DEFAULTS.maxFrameBytes) },
  { flag: 'max-doc-bytes', option: 'maxDocBytes', kind: 'int', help: 'largest stored document size', default: String(DEFAULTS.maxDocBytes) },
  { flag: 'max-connections-per-doc', option: 'maxConnectionsPerDoc', kind: 'int', help: 'connections one document accepts', default: String(DEFAULTS.maxConnectionsPerDoc) },
  { flag: 'max-buffered-bytes', option: 'maxBufferedBytes', kind: 'int', help: 'unsent bytes before a slow client is dropped', default: String(DEFAULTS.maxBufferedBytes) },
  { flag: 'heartbeat-ms', option: 'heartbeatMs', kind: 'int', help: 'ping interval; a missed pong drops the client', default: String(DEFAULTS.heartbeatMs) },
  { flag: 'compact-after-updates', option: 'compactAfterUpdates', kind: 'int', help: 'merge the update log into the snapshot after this many updates', default: String(DEFAULTS.compactAfterUpdates) },
  { flag: 'shutdown-timeout-ms', option: 'shutdownTimeoutMs', kind: 'int', help: 'how long shutdown waits for sockets and writes', default: String(DEFAULTS.shutdownTimeoutMs) },
  { flag: 'log-level', option: 'logLevel', kind: 'string', help: 'fatal, error, warn, info, debug, trace or silent', default: 'info' },
];

export const envName = (flag: string): string => `STATEWEAVE_${flag.toUpperCase().replaceAll('-', '_')}`;

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

const convert = (flag: Flag, raw: string, source: string): number | string | boolean => {
  if (flag.kind === 'string') return raw;
  if (flag.kind === 'bool') {
    if (['1', 'true', 'yes', 'on', ''].includes(raw.toLowerCase())) return true;
    if (['0', 'false', 'no', 'off'].includes(raw.toLowerCase())) return false;
    throw new UsageError(`${source}: expected true or false, got ${JSON.stringify(raw)}`);
  }
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 0) throw new UsageError(`${source}: expected a non-negative integer, got ${JSON.stringify(raw)}`);
  return n;
};

export type ServeConfig = ServerOptions & { logLevel?: string };

export const parseServeConfig = (args: string[], env: NodeJS.ProcessEnv): ServeConfig => {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: Object.fromEntries(SERVE_FLAGS.map((f) => [f.flag, { type: f.kind === 'bool' ? 'boolean' : 'string' }])),
      allowPositionals: false,
      strict: true,
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const config: Record<string, unknown> = {};
  for (const flag of SERVE_FLAGS) {
    const fromArgs = parsed.values[flag.flag];
    const fromEnv = env[envName(flag.flag)];
    if (fromArgs !== undefined) {
      config[flag.option] = typeof fromArgs === 'boolean' ? fromArgs : convert(flag, String(fromArgs), `--${flag.flag}`);
    } else if (fromEnv !== undefined) {
      config[flag.option] = convert(flag, fromEnv, envName(flag.flag));
    }
  }
  return config as ServeConfig;
};

export const serveUsage = (): string =>
  [
    'Usage: stateweave serve [flags]',
    '',
    ...SERVE_FLAGS.map((f) => `  --${f.flag.padEnd(24)} ${f.help} (env ${envName(f.flag)}, default ${f.default})`),
  ].join('\n');
