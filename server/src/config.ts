/**
 * `stateweave serve` flags. One table: each flag, its environment variable
 * (STATEWEAVE_<FLAG>), its type and help. The README's configuration table is
 * this table. Flags win over the environment, which wins over the defaults.
 */
import { parseArgs } from 'node:util';
import { CliError } from './cli-failure.js';
import { RIGHTS, type Right } from './auth/grant.js';
import { parseTtlSeconds } from './auth/token-ttl.js';
import { DEFAULTS, type ServerOptions } from './server.js';
import { parseWebhookTarget } from './webhooks/webhook-target.js';

/** `duration`: 0, seconds, or 30m / 1h / 7d, given to the server in ms. */
type Kind = 'int' | 'string' | 'bool' | 'list' | 'duration';

/** Settings that main.ts turns into ServerOptions (reading files, building `auth`). */
export interface ServeSettings {
  logLevel?: string;
  authSecret?: string;
  /** A file holding the token secret (read at start; nothing else keeps it). */
  authSecretFile?: string;
  /** A file holding the peer secret. */
  peerSecretFile?: string;
  /** A file holding the webhook secret. */
  webhookSecretFile?: string;
  authPublicKeyFile?: string;
  authJwksUrl?: string;
  authIssuer?: string;
  authAudience?: string;
  anonymous?: string[];
  /** `--max-token-ttl` as given: seconds, or 30m, 1h, 7d. */
  maxTokenTtl?: string;
  /** `--peers` as given: a comma list of URLs. */
  peerUrls?: string;
}

interface Flag {
  readonly flag: string;
  readonly option: keyof ServerOptions | keyof ServeSettings;
  readonly kind: Kind;
  readonly help: string;
  readonly default: string;
  /** Smallest accepted integer. @default 0 */
  readonly min?: number;
  readonly max?: number;
  readonly choices?: readonly string[];
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export const SERVE_FLAGS: readonly Flag[] = [
  {
    flag: 'port',
    option: 'port',
    kind: 'int',
    help: 'TCP port (0 = any free port)',
    default: String(DEFAULTS.port),
    max: 65535,
  },
  {
    flag: 'host',
    option: 'host',
    kind: 'string',
    help: 'interface to bind',
    default: DEFAULTS.host,
  },
  {
    flag: 'data',
    option: 'dataDir',
    kind: 'string',
    help: 'LevelDB data directory',
    default: DEFAULTS.dataDir,
  },
  {
    flag: 'fsync',
    option: 'fsync',
    kind: 'bool',
    help: 'fsync every write batch (power-loss safe)',
    default: String(DEFAULTS.fsync),
  },
  {
    flag: 'commit-window-ms',
    option: 'commitWindowMs',
    kind: 'int',
    help: 'a stored change may wait this long to share its write with others (0: none)',
    default: String(DEFAULTS.commitWindowMs),
  },
  {
    flag: 'idle-unload-ms',
    option: 'idleUnloadMs',
    kind: 'int',
    help: 'unload a document this long after its last client left',
    default: String(DEFAULTS.idleUnloadMs),
  },
  {
    flag: 'max-frame-bytes',
    option: 'maxFrameBytes',
    kind: 'int',
    help: 'largest WebSocket frame / HTTP body',
    default: String(DEFAULTS.maxFrameBytes),
    min: 1,
  },
  {
    flag: 'max-doc-bytes',
    option: 'maxDocBytes',
    kind: 'int',
    help: 'largest stored document size',
    default: String(DEFAULTS.maxDocBytes),
    min: 1,
  },
  {
    flag: 'max-connections-per-doc',
    option: 'maxConnectionsPerDoc',
    kind: 'int',
    help: 'connections one document accepts',
    default: String(DEFAULTS.maxConnectionsPerDoc),
    min: 1,
  },
  {
    flag: 'max-buffered-bytes',
    option: 'maxBufferedBytes',
    kind: 'int',
    help: 'unsent bytes before a slow client is dropped',
    default: String(DEFAULTS.maxBufferedBytes),
    min: 1,
  },
  {
    flag: 'max-total-buffered-bytes',
    option: 'maxTotalBufferedBytes',
    kind: 'int',
    help: 'unsent bytes across all clients before the slowest readers are dropped',
    default: String(DEFAULTS.maxTotalBufferedBytes),
    min: 1,
  },
  {
    flag: 'heartbeat-ms',
    option: 'heartbeatMs',
    kind: 'int',
    help: 'ping interval; a missed pong drops the client',
    default: String(DEFAULTS.heartbeatMs),
    min: 100,
  },
  {
    flag: 'history-retention',
    option: 'historyRetentionMs',
    kind: 'duration',
    help: "how long each document's history (versions, change feed) is kept; 0 keeps none",
    default: '30d',
  },
  {
    flag: 'tombstone-ttl',
    option: 'tombstoneTtlMs',
    kind: 'duration',
    help: 'how long a deleted document is remembered, so a node that was down does not bring it back',
    default: '--history-retention, or 7d when that is 0',
  },
  {
    flag: 'compact-after-updates',
    option: 'compactAfterUpdates',
    kind: 'int',
    help: 'merge the update log into the snapshot after this many updates',
    default: String(DEFAULTS.compactAfterUpdates),
    min: 1,
  },
  {
    flag: 'shutdown-timeout-ms',
    option: 'shutdownTimeoutMs',
    kind: 'int',
    help: 'how long shutdown waits for sockets and writes',
    default: String(DEFAULTS.shutdownTimeoutMs),
  },
  {
    flag: 'max-connections-per-ip',
    option: 'maxConnectionsPerIp',
    kind: 'int',
    help: 'WebSockets one remote address may hold',
    default: String(DEFAULTS.maxConnectionsPerIp),
    min: 1,
  },
  {
    flag: 'max-connections',
    option: 'maxConnections',
    kind: 'int',
    help: 'WebSockets the whole node holds; beyond, upgrades get 503 (health and metrics never do)',
    default: String(DEFAULTS.maxConnections),
    min: 1,
  },
  {
    flag: 'trust-proxy',
    option: 'trustProxy',
    kind: 'list',
    help: 'comma list of proxy addresses or CIDR ranges whose Forwarded / X-Forwarded-For is believed',
    default: 'none',
  },
  {
    flag: 'handshake-timeout-ms',
    option: 'handshakeTimeoutMs',
    kind: 'int',
    help: 'close a connection whose HTTP request or upgrade is not complete within this time',
    default: String(DEFAULTS.handshakeTimeoutMs),
    min: 100,
  },
  {
    flag: 'max-presence-ids-per-connection',
    option: 'maxPresenceIdsPerConnection',
    kind: 'int',
    help: 'presence client ids one connection may speak for (PRESENCE_LIMIT beyond)',
    default: String(DEFAULTS.maxPresenceIdsPerConnection),
    min: 1,
  },
  {
    flag: 'max-presence-bytes',
    option: 'maxPresenceBytes',
    kind: 'int',
    help: 'largest presence state in JSON bytes (PRESENCE_TOO_LARGE beyond)',
    default: String(DEFAULTS.maxPresenceBytes),
    min: 1,
  },
  {
    flag: 'update-frames-per-second',
    option: 'updateFramesPerSecond',
    kind: 'int',
    help: 'update frames a second one document sends its clients at once; past it, updates are merged per tick (at most 50 ms)',
    default: String(DEFAULTS.updateFramesPerSecond),
    min: 1,
  },
  {
    flag: 'max-docs-per-socket',
    option: 'maxDocsPerSocket',
    kind: 'int',
    help: 'documents one multiplexed socket (ws://HOST/) may have open',
    default: String(DEFAULTS.maxDocsPerSocket),
    min: 1,
  },
  {
    flag: 'new-docs-per-subject-per-minute',
    option: 'newDocsPerSubjectPerMinute',
    kind: 'int',
    help: 'documents one token subject may create per minute (DOC_CREATION_LIMITED beyond; 0 = no bound)',
    default: String(DEFAULTS.newDocsPerSubjectPerMinute),
  },
  {
    flag: 'max-new-docs-per-subject',
    option: 'maxNewDocsPerSubject',
    kind: 'int',
    help: 'documents one token subject may create in all since the node started (0 = no bound)',
    default: String(DEFAULTS.maxNewDocsPerSubject),
  },
  {
    flag: 'max-messages-per-second',
    option: 'maxMessagesPerSecond',
    kind: 'int',
    help: 'sustained messages per second per connection',
    default: String(DEFAULTS.maxMessagesPerSecond),
    min: 1,
  },
  {
    flag: 'message-burst',
    option: 'messageBurst',
    kind: 'int',
    help: 'messages a connection may send at once above the rate',
    default: String(DEFAULTS.messageBurst),
    min: 1,
  },
  {
    flag: 'max-header-bytes',
    option: 'maxHeaderBytes',
    kind: 'int',
    help: 'largest HTTP request head (bounds bytes before authentication)',
    default: String(DEFAULTS.maxHeaderBytes),
    min: 1024,
  },
  {
    flag: 'auth-secret',
    option: 'authSecret',
    kind: 'string',
    help: 'HS256 secret for tokens (at least 32 bytes); prefer the environment variable',
    default: 'none: development node',
  },
  {
    flag: 'auth-secret-file',
    option: 'authSecretFile',
    kind: 'string',
    help: 'file holding the HS256 token secret (read once at start; trailing newline ignored)',
    default: 'none',
  },
  {
    flag: 'auth-public-key',
    option: 'authPublicKeyFile',
    kind: 'string',
    help: 'PEM file with the public key for RS256/ES256/EdDSA tokens',
    default: 'none',
  },
  {
    flag: 'auth-jwks-url',
    option: 'authJwksUrl',
    kind: 'string',
    help: 'JWKS URL for RS256/ES256/EdDSA tokens',
    default: 'none',
  },
  {
    flag: 'auth-issuer',
    option: 'authIssuer',
    kind: 'string',
    help: 'required token issuer (iss)',
    default: 'any',
  },
  {
    flag: 'auth-audience',
    option: 'authAudience',
    kind: 'string',
    help: 'required token audience (aud)',
    default: 'any',
  },
  {
    flag: 'anonymous',
    option: 'anonymous',
    kind: 'list',
    help: `rights of callers without a token (comma list of ${RIGHTS.join(', ')})`,
    default: 'none',
    choices: RIGHTS,
  },
  {
    flag: 'max-token-ttl',
    option: 'maxTokenTtl',
    kind: 'string',
    help: 'refuse tokens whose exp lies further out than this (seconds, or 30m, 1h, 7d)',
    default: 'none',
  },
  {
    flag: 'functions',
    option: 'functionsDir',
    kind: 'string',
    help: 'directory of function modules (*.ts, *.js) deployed at start',
    default: 'none',
  },
  {
    flag: 'static',
    option: 'staticDir',
    kind: 'string',
    help: 'directory of static files (e.g. demo-app/dist) served at /',
    default: 'none',
  },
  {
    flag: 'cors-origin',
    option: 'corsOrigins',
    kind: 'list',
    help: 'comma list of browser origins (https://app.example.com) allowed to call the HTTP API, or *',
    default: 'none',
  },
  {
    flag: 'webhook',
    option: 'webhooks',
    kind: 'list',
    help: 'POST each change, signed, to URL (or PREFIX=URL: only documents under PREFIX); repeatable or a comma list',
    default: 'none',
  },
  {
    flag: 'webhook-secret',
    option: 'webhookSecret',
    kind: 'string',
    help: 'HMAC key of the webhook signatures (whsec_<base64>, or ≥ 16 bytes); prefer the environment variable or --webhook-secret-file',
    default: 'none',
  },
  {
    flag: 'webhook-secret-file',
    option: 'webhookSecretFile',
    kind: 'string',
    help: 'file holding the webhook secret (read once at start; trailing newline ignored)',
    default: 'none',
  },
  {
    flag: 'webhook-debounce-ms',
    option: 'webhookDebounceMs',
    kind: 'int',
    help: "a document's changes within this time of its first one go out as one event",
    default: String(DEFAULTS.webhookDebounceMs),
  },
  {
    flag: 'webhook-max-age',
    option: 'webhookMaxAgeMs',
    kind: 'duration',
    help: 'an event whose receiver keeps failing this long is dropped (metric and log line); at most the history retention',
    default: '1d',
  },
  {
    flag: 'webhook-retry-max-ms',
    option: 'webhookRetryMaxMs',
    kind: 'int',
    help: 'longest wait between two tries of a failing webhook (the first is 500 ms, doubling)',
    default: String(DEFAULTS.webhookRetryMaxMs),
    min: 1,
  },
  {
    flag: 'function-isolation',
    option: 'functionIsolation',
    kind: 'string',
    help: 'function workers as threads of the node, or as processes of their own (a native crash in a sandbox then ends one worker, not the node)',
    default: DEFAULTS.functionIsolation,
    choices: ['thread', 'process'],
  },
  {
    flag: 'function-memory-mb',
    option: 'functionMemoryMb',
    kind: 'int',
    help: "heap of one function's sandbox (a V8 isolate), MiB",
    default: String(DEFAULTS.functionMemoryMb),
    min: 8,
  },
  {
    flag: 'max-function-timeout-ms',
    option: 'maxFunctionTimeoutMs',
    kind: 'int',
    help: "upper bound of every function's timeoutMs",
    default: String(DEFAULTS.maxFunctionTimeoutMs),
    min: 1,
  },
  {
    flag: 'max-function-output-bytes',
    option: 'maxFunctionOutputBytes',
    kind: 'int',
    help: 'largest result of one function call (JSON bytes)',
    default: String(DEFAULTS.maxFunctionOutputBytes),
    min: 1,
  },
  {
    flag: 'node-id',
    option: 'nodeId',
    kind: 'string',
    help: "this node's id in the cluster (A-Z a-z 0-9 _ -); required with --peers",
    default: DEFAULTS.nodeId,
  },
  {
    flag: 'peers',
    option: 'peerUrls',
    kind: 'string',
    help: "comma list of the other nodes' URLs (ws://host:port)",
    default: 'none',
  },
  {
    flag: 'peer-secret',
    option: 'peerSecret',
    kind: 'string',
    help: "secret shared by the cluster's nodes for peer links (not the token secret; ≥ 16 bytes); prefer the environment variable",
    default: 'none',
  },
  {
    flag: 'private-cluster-status',
    option: 'privateClusterStatus',
    kind: 'bool',
    help: 'GET /v1/cluster shows peers only to a token with the admin right (others get the node id)',
    default: 'false',
  },
  {
    flag: 'peer-secret-file',
    option: 'peerSecretFile',
    kind: 'string',
    help: 'file holding the peer secret (read once at start; trailing newline ignored)',
    default: 'none',
  },
  {
    flag: 'replication-factor',
    option: 'replicationFactor',
    kind: 'int',
    help: 'home nodes per document (capped at the cluster size)',
    default: String(DEFAULTS.replicationFactor),
    min: 1,
  },
  {
    flag: 'redis',
    option: 'redis',
    kind: 'string',
    help: 'Redis URL of the cluster backplane, instead of --peers (redis://[:password@]host:6379, rediss:// for TLS); prefer the environment variable',
    default: 'none',
  },
  {
    flag: 'ack',
    option: 'ack',
    kind: 'string',
    help: 'what "saved" waits for: stored (in this node\'s store) or replicated (also in Redis; needs --redis and Redis appendonly yes)',
    default: 'stored',
    choices: ['stored', 'replicated'],
  },
  {
    flag: 'region',
    option: 'region',
    kind: 'string',
    help: "this node's region (A-Z a-z 0-9 _ -), for --placement presence",
    default: 'none',
  },
  {
    flag: 'placement',
    option: 'placement',
    kind: 'string',
    help: "hash (homes by rendezvous hashing) or presence (a document's first home and owner primary move to its users' region; needs --region)",
    default: 'hash',
    choices: ['hash', 'presence'],
  },
  {
    flag: 'presence-dwell-ms',
    option: 'presenceDwellMs',
    kind: 'int',
    help: 'with --placement presence: how long a region must lead before a document moves there',
    default: '10000',
  },
  {
    flag: 'stable-home-grace',
    option: 'stableHomeGraceMs',
    kind: 'duration',
    help: 'how long a home that left the cluster (or stopped answering) still holds onStable windows back',
    default: '30s',
  },
  {
    flag: 'log-level',
    option: 'logLevel',
    kind: 'string',
    help: LOG_LEVELS.join(', '),
    default: 'info',
    choices: LOG_LEVELS,
  },
];

export const envName = (flag: string): string =>
  `STATEWEAVE_${flag.toUpperCase().replaceAll('-', '_')}`;

/** A mistake in the flags or the environment: exit code 2. */
export class UsageError extends CliError {
  override readonly name = 'UsageError';
  constructor(message: string) {
    super(message, 2);
  }
}

const convert = (flag: Flag, raw: string, source: string): number | string | boolean | string[] => {
  if (flag.kind === 'duration') {
    if (raw.trim() === '0') return 0;
    try {
      return parseTtlSeconds(raw) * 1000;
    } catch {
      throw new UsageError(
        `${source}: expected 0 or a duration (seconds, or 30m, 1h, 7d), got ${JSON.stringify(raw)}`,
      );
    }
  }
  if (flag.kind === 'list') {
    const items = raw
      .split(',')
      .map((item) => item.trim())
      .filter((item) => item !== '');
    const bad = items.find((item) => flag.choices && !flag.choices.includes(item));
    if (bad !== undefined)
      throw new UsageError(
        `${source}: expected a comma list of ${flag.choices!.join(', ')}, got ${JSON.stringify(bad)}`,
      );
    return items;
  }
  if (flag.kind === 'string') {
    if (flag.choices && !flag.choices.includes(raw)) {
      throw new UsageError(
        `${source}: expected one of ${flag.choices.join(', ')}, got ${JSON.stringify(raw)}`,
      );
    }
    return raw;
  }
  if (flag.kind === 'bool') {
    if (['1', 'true', 'yes', 'on'].includes(raw.toLowerCase())) return true;
    if (['0', 'false', 'no', 'off'].includes(raw.toLowerCase())) return false;
    throw new UsageError(`${source}: expected true or false, got ${JSON.stringify(raw)}`);
  }
  // Decimal digits only: Number() would read '' as 0 and accept '0x10' or '1e3'.
  const min = flag.min ?? 0;
  const max = flag.max ?? Number.MAX_SAFE_INTEGER;
  const n = /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new UsageError(
      `${source}: expected an integer from ${min} to ${max}, got ${JSON.stringify(raw)}`,
    );
  }
  return n;
};

export type ServeConfig = ServerOptions & ServeSettings;

export const parseServeConfig = (args: string[], env: NodeJS.ProcessEnv): ServeConfig => {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: Object.fromEntries(
        SERVE_FLAGS.flatMap(
          (f): Array<[string, { type: 'boolean' | 'string'; multiple?: boolean }]> =>
            f.kind === 'bool'
              ? [
                  [f.flag, { type: 'boolean' }],
                  [`no-${f.flag}`, { type: 'boolean' }],
                ]
              : // A list flag may be repeated (--webhook A --webhook B) as well as comma-separated.
                [[f.flag, { type: 'string', multiple: f.kind === 'list' }]],
        ),
      ),
      allowPositionals: false,
      strict: true,
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const config: Record<string, unknown> = {};
  for (const flag of SERVE_FLAGS) {
    const negated = parsed.values[`no-${flag.flag}`] === true ? false : undefined;
    const fromArgs = parsed.values[flag.flag] ?? negated;
    const fromEnv = env[envName(flag.flag)];
    if (fromArgs !== undefined) {
      config[flag.option] =
        typeof fromArgs === 'boolean'
          ? fromArgs
          : convert(
              flag,
              Array.isArray(fromArgs) ? fromArgs.join(',') : String(fromArgs),
              `--${flag.flag}`,
            );
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
    ...SERVE_FLAGS.map(
      (f) => `  --${f.flag.padEnd(24)} ${f.help} (env ${envName(f.flag)}, default ${f.default})`,
    ),
    '',
    'Boolean flags also take a --no- form (--no-fsync) to override the environment.',
  ].join('\n');

/** A secret given inline or as a file (not both); a file's trailing newline is not part of it. */
const secretFrom = (
  flag: string,
  inline: string | undefined,
  file: string | undefined,
  readFile: (path: string) => string,
): string | undefined => {
  if (file === undefined) return inline;
  if (inline !== undefined) throw new UsageError(`use only one of --${flag} and --${flag}-file`);
  let text: string;
  try {
    text = readFile(file);
  } catch (err) {
    throw new UsageError(`--${flag}-file: cannot read ${file}: ${(err as Error).message}`);
  }
  const secret = text.replace(/\r?\n$/, '');
  if (secret === '') throw new UsageError(`--${flag}-file: ${file} is empty`);
  return secret;
};

/** Environment variables that hold secrets: main.ts removes them once they are read. */
export const SECRET_ENV = [
  envName('auth-secret'),
  envName('peer-secret'),
  envName('webhook-secret'),
] as const;

/**
 * ServerOptions from parsed settings. `readFile` is injected so that this stays
 * free of I/O (main.ts passes fs.readFileSync).
 */
export const toServerOptions = (
  config: ServeConfig,
  readFile: (path: string) => string,
): ServerOptions & { logLevel?: string } => {
  const {
    authSecret: inlineSecret,
    authSecretFile,
    peerSecret: inlinePeerSecret,
    peerSecretFile,
    webhookSecret: inlineWebhookSecret,
    webhookSecretFile,
    authPublicKeyFile,
    authJwksUrl,
    authIssuer,
    authAudience,
    anonymous,
    maxTokenTtl,
    peerUrls,
    ...options
  } = config;
  const authSecret = secretFrom('auth-secret', inlineSecret, authSecretFile, readFile);
  const peerSecret = secretFrom('peer-secret', inlinePeerSecret, peerSecretFile, readFile);
  const webhookSecret = secretFrom(
    'webhook-secret',
    inlineWebhookSecret,
    webhookSecretFile,
    readFile,
  );
  // Webhook mistakes are usage errors (exit 2), found before anything starts.
  for (const target of options.webhooks ?? []) {
    try {
      parseWebhookTarget(target);
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
  }
  if ((options.webhooks ?? []).length > 0 && webhookSecret === undefined)
    throw new UsageError(
      '--webhook needs --webhook-secret or --webhook-secret-file (receivers verify the signature with it)',
    );
  const keys = [authSecret, authPublicKeyFile, authJwksUrl].filter((k) => k !== undefined).length;
  if (keys > 1)
    throw new UsageError('use only one of --auth-secret, --auth-public-key and --auth-jwks-url');
  if (keys === 0 && anonymous !== undefined) {
    throw new UsageError(
      '--anonymous only makes sense with --auth-secret, --auth-public-key or --auth-jwks-url (without them the node is open)',
    );
  }
  let publicKey: string | undefined;
  if (authPublicKeyFile !== undefined) {
    try {
      publicKey = readFile(authPublicKeyFile);
    } catch (err) {
      throw new UsageError(
        `--auth-public-key: cannot read ${authPublicKeyFile}: ${(err as Error).message}`,
      );
    }
  }
  let maxTtlSeconds: number | undefined;
  if (maxTokenTtl !== undefined) {
    try {
      maxTtlSeconds = parseTtlSeconds(maxTokenTtl);
    } catch (err) {
      throw new UsageError(`--max-token-ttl: ${(err as Error).message}`);
    }
  }
  const auth = {
    ...(authSecret !== undefined ? { secret: authSecret } : {}),
    ...(publicKey !== undefined ? { publicKey } : {}),
    ...(authJwksUrl !== undefined ? { jwksUrl: authJwksUrl } : {}),
    ...(authIssuer !== undefined ? { issuer: authIssuer } : {}),
    ...(authAudience !== undefined ? { audience: authAudience } : {}),
    ...(anonymous !== undefined ? { anonymous: anonymous as Right[] } : {}),
    ...(maxTtlSeconds !== undefined ? { maxTtlSeconds } : {}),
  };
  const peers = peerUrls
    ?.split(',')
    .map((url) => url.trim())
    .filter((url) => url !== '');
  return {
    ...options,
    auth,
    ...(peers !== undefined ? { peers } : {}),
    ...(peerSecret !== undefined ? { peerSecret } : {}),
    ...(webhookSecret !== undefined ? { webhookSecret } : {}),
  };
};
