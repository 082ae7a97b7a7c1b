/**
 * `stateweave serve` configuration: every flag parses, every flag has an
 * STATEWEAVE_<FLAG> environment fallback, flags win over the environment, bad
 * values are a UsageError, and `serve --help` lists every flag.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  envName,
  parseServeConfig,
  toServerOptions,
  SERVE_FLAGS,
  serveUsage,
  UsageError,
} from '../src/config.js';
import { MAIN } from './helpers/node.js';

/** A value of the right kind for a flag, distinct from its default. */
const exampleValue = (flag: (typeof SERVE_FLAGS)[number], seed: number): string => {
  if (flag.kind === 'int')
    return String(Math.min(flag.max ?? Infinity, Math.max(flag.min ?? 0, 1000 + seed)));
  if (flag.kind === 'bool') return 'true';
  if (flag.kind === 'duration') return `${seed + 1}m`;
  if (flag.choices) return flag.choices[seed % flag.choices.length]!;
  return `value-${seed}`;
};

const expected = (flag: (typeof SERVE_FLAGS)[number], raw: string): unknown =>
  flag.kind === 'int'
    ? Number(raw)
    : flag.kind === 'duration'
      ? Number(raw.slice(0, -1)) * 60_000
      : flag.kind === 'bool'
        ? true
        : flag.kind === 'list'
          ? [raw]
          : raw;

const runCli = (args: string[]) =>
  spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', timeout: 10_000 });

describe('parseServeConfig', () => {
  it('names the environment variable of each flag STATEWEAVE_<FLAG>', () => {
    assert.equal(envName('port'), 'STATEWEAVE_PORT');
    assert.equal(envName('max-connections-per-doc'), 'STATEWEAVE_MAX_CONNECTIONS_PER_DOC');
  });

  it('has the flags the design names', () => {
    const flags = SERVE_FLAGS.map((f) => f.flag);
    for (const flag of ['port', 'host', 'data']) assert.ok(flags.includes(flag), flag);
    assert.equal(new Set(flags).size, flags.length, 'no flag twice');
  });

  it('returns nothing when neither flags nor environment say anything (defaults live in createServer)', () => {
    assert.deepEqual(parseServeConfig([], {}), {});
    assert.deepEqual(
      parseServeConfig([], { PORT: '80', HOME: '/root', STATEWEAVE_UNKNOWN: 'x' }),
      {},
    );
  });

  it('parses every flag, as --flag value and as --flag=value', () => {
    SERVE_FLAGS.forEach((flag, i) => {
      const raw = exampleValue(flag, i);
      const args = flag.kind === 'bool' ? [`--${flag.flag}`] : [`--${flag.flag}`, raw];
      assert.deepEqual(
        parseServeConfig(args, {}),
        { [flag.option]: expected(flag, raw) },
        flag.flag,
      );
      if (flag.kind !== 'bool') {
        assert.deepEqual(
          parseServeConfig([`--${flag.flag}=${raw}`], {}),
          { [flag.option]: expected(flag, raw) },
          `${flag.flag}=`,
        );
      }
    });
  });

  it('takes a list flag repeated as well as comma-separated', () => {
    assert.deepEqual(
      parseServeConfig(
        ['--webhook', 'https://a/x', '--webhook', 'docs/=https://b/y,https://c/z'],
        {},
      ),
      { webhooks: ['https://a/x', 'docs/=https://b/y', 'https://c/z'] },
    );
  });

  it('parses all flags together into ServerOptions names', () => {
    const config = parseServeConfig(
      [
        '--port',
        '4321',
        '--host',
        '127.0.0.1',
        '--data',
        '/tmp/sw',
        '--fsync',
        '--max-frame-bytes',
        '1024',
        '--heartbeat-ms',
        '500',
        '--log-level',
        'warn',
      ],
      {},
    );
    assert.deepEqual(config, {
      port: 4321,
      host: '127.0.0.1',
      dataDir: '/tmp/sw',
      fsync: true,
      maxFrameBytes: 1024,
      heartbeatMs: 500,
      logLevel: 'warn',
    });
  });

  it('falls back to STATEWEAVE_* for every flag', () => {
    SERVE_FLAGS.forEach((flag, i) => {
      const raw = exampleValue(flag, i);
      assert.deepEqual(
        parseServeConfig([], { [envName(flag.flag)]: raw }),
        { [flag.option]: expected(flag, raw) },
        envName(flag.flag),
      );
    });
  });

  it('reads booleans from the environment in the usual spellings', () => {
    for (const raw of ['1', 'true', 'TRUE', 'yes', 'on'])
      assert.deepEqual(parseServeConfig([], { STATEWEAVE_FSYNC: raw }), { fsync: true }, raw);
    for (const raw of ['0', 'false', 'False', 'no', 'off'])
      assert.deepEqual(parseServeConfig([], { STATEWEAVE_FSYNC: raw }), { fsync: false }, raw);
  });

  it('lets flags win over the environment, flag by flag', () => {
    const env = {
      STATEWEAVE_PORT: '1111',
      STATEWEAVE_HOST: 'env-host',
      STATEWEAVE_MAX_DOC_BYTES: '5555',
      STATEWEAVE_FSYNC: 'false',
    };
    assert.deepEqual(parseServeConfig(['--port', '2222', '--fsync'], env), {
      port: 2222,
      host: 'env-host',
      maxDocBytes: 5555,
      fsync: true,
    });
    SERVE_FLAGS.filter((f) => f.kind !== 'bool').forEach((flag, i) => {
      const fromFlag = exampleValue(flag, i);
      const fromEnv = exampleValue(flag, i + 1);
      assert.deepEqual(
        parseServeConfig([`--${flag.flag}`, fromFlag], { [envName(flag.flag)]: fromEnv }),
        { [flag.option]: expected(flag, fromFlag) },
        flag.flag,
      );
    });
  });

  it('does not validate a bad environment value that a flag overrides', () => {
    assert.deepEqual(parseServeConfig(['--port', '80'], { STATEWEAVE_PORT: 'eighty' }), {
      port: 80,
    });
  });

  it('throws UsageError for bad values, naming the flag or variable', () => {
    const bad: Array<[string[], NodeJS.ProcessEnv, RegExp]> = [
      [['--port', 'abc'], {}, /--port/],
      [['--port=-1'], {}, /--port/],
      [['--port', '-1'], {}, /--port/],
      [['--port', '1.5'], {}, /--port/],
      [['--max-frame-bytes', '1e400'], {}, /--max-frame-bytes/],
      [['--heartbeat-ms', '9007199254740993'], {}, /--heartbeat-ms/],
      [['--port'], {}, /--port/],
      [['--fsync=maybe'], {}, /--fsync/],
      [[], { STATEWEAVE_PORT: 'abc' }, /STATEWEAVE_PORT/],
      [[], { STATEWEAVE_MAX_DOC_BYTES: '-5' }, /STATEWEAVE_MAX_DOC_BYTES/],
      [[], { STATEWEAVE_FSYNC: 'maybe' }, /STATEWEAVE_FSYNC/],
    ];
    for (const [args, env, message] of bad) {
      assert.throws(
        () => parseServeConfig(args, env),
        (err: unknown) => {
          assert.ok(
            err instanceof UsageError,
            `${JSON.stringify(args)} ${JSON.stringify(env)}: ${String(err)}`,
          );
          assert.match(err.message, message);
          return true;
        },
      );
    }
  });

  it('throws UsageError for unknown flags and positional arguments', () => {
    assert.throws(() => parseServeConfig(['--bogus', '1'], {}), UsageError);
    assert.throws(() => parseServeConfig(['--Port', '1'], {}), UsageError);
    assert.throws(() => parseServeConfig(['extra'], {}), UsageError);
  });

  it('refuses an empty environment value for a number instead of reading it as 0', () => {
    assert.throws(() => parseServeConfig([], { STATEWEAVE_PORT: '' }), UsageError);
    assert.throws(() => parseServeConfig([], { STATEWEAVE_MAX_FRAME_BYTES: ' ' }), UsageError);
  });

  it('reads --history-retention as a duration in ms, 0 turning history off', () => {
    const env = {};
    assert.equal(parseServeConfig(['--history-retention', '0'], env).historyRetentionMs, 0);
    assert.equal(
      parseServeConfig(['--history-retention', '7d'], env).historyRetentionMs,
      7 * 86_400_000,
    );
    assert.equal(parseServeConfig(['--history-retention', '90'], env).historyRetentionMs, 90_000);
    assert.throws(
      () => parseServeConfig(['--history-retention', 'forever'], env),
      (err: Error) => err instanceof UsageError && /--history-retention/.test(err.message),
    );
  });

  it('refuses a port above 65535', () => {
    assert.throws(() => parseServeConfig(['--port', '70000'], {}), UsageError);
  });

  it('refuses 0 where 0 breaks the node', () => {
    // heartbeat 0 drops every client within milliseconds; max-frame-bytes 0 means
    // "unlimited" to ws but "nothing" to the HTTP body parser.
    for (const flag of [
      'heartbeat-ms',
      'max-frame-bytes',
      'max-doc-bytes',
      'max-connections-per-doc',
      'max-buffered-bytes',
    ]) {
      assert.throws(() => parseServeConfig([`--${flag}`, '0'], {}), UsageError, flag);
    }
  });

  it('turns a boolean off with --no-FLAG, over the environment', () => {
    assert.equal(parseServeConfig(['--no-fsync'], { STATEWEAVE_FSYNC: 'true' }).fsync, false);
    assert.equal(parseServeConfig([], { STATEWEAVE_FSYNC: 'true' }).fsync, true);
  });

  it('refuses an unknown log level as a usage error', () => {
    assert.throws(() => parseServeConfig(['--log-level', 'loud'], {}), UsageError);
  });
});

describe('toServerOptions', () => {
  const noFiles = (path: string): string => {
    throw new Error(`no file ${path}`);
  };

  it('builds the auth options from the auth flags and reads the public key file', () => {
    const withSecret = toServerOptions(
      parseServeConfig(['--auth-secret', 's'.repeat(32), '--anonymous', 'read,write'], {}),
      noFiles,
    );
    assert.deepEqual(withSecret.auth, { secret: 's'.repeat(32), anonymous: ['read', 'write'] });
    const withKey = toServerOptions(
      parseServeConfig(['--auth-public-key', '/keys/pub.pem', '--auth-issuer', 'me'], {}),
      (path) => `PEM of ${path}`,
    );
    assert.deepEqual(withKey.auth, { publicKey: 'PEM of /keys/pub.pem', issuer: 'me' });
    assert.deepEqual(toServerOptions(parseServeConfig([], {}), noFiles).auth, {});
  });

  it('refuses conflicting or meaningless auth settings, and unreadable key files', () => {
    assert.throws(
      () =>
        toServerOptions(
          parseServeConfig(
            ['--auth-secret', 'x'.repeat(32), '--auth-jwks-url', 'http://127.0.0.1/j'],
            {},
          ),
          noFiles,
        ),
      UsageError,
    );
    assert.throws(
      () => toServerOptions(parseServeConfig(['--anonymous', 'read'], {}), noFiles),
      UsageError,
    );
    assert.throws(
      () => toServerOptions(parseServeConfig(['--auth-public-key', '/nope.pem'], {}), noFiles),
      /cannot read/,
    );
    assert.throws(() => parseServeConfig(['--anonymous', 'read,root'], {}), UsageError);
  });

  it('reads the token and peer secrets from files, flag or environment, without the trailing newline', () => {
    const files: Record<string, string> = {
      '/run/secrets/auth': `${'a'.repeat(32)}\n`,
      '/run/secrets/peer': `${'p'.repeat(16)}\r\n`,
    };
    const read = (path: string): string => {
      const text = files[path];
      if (text === undefined) throw new Error('ENOENT');
      return text;
    };
    const fromFlags = toServerOptions(
      parseServeConfig(
        ['--auth-secret-file', '/run/secrets/auth', '--peer-secret-file', '/run/secrets/peer'],
        {},
      ),
      read,
    );
    assert.deepEqual(fromFlags.auth, { secret: 'a'.repeat(32) });
    assert.equal(fromFlags.peerSecret, 'p'.repeat(16));
    const fromEnv = toServerOptions(
      parseServeConfig([], {
        STATEWEAVE_AUTH_SECRET_FILE: '/run/secrets/auth',
        STATEWEAVE_PEER_SECRET_FILE: '/run/secrets/peer',
      }),
      read,
    );
    assert.deepEqual(fromEnv.auth, { secret: 'a'.repeat(32) });
    assert.equal(fromEnv.peerSecret, 'p'.repeat(16));
    assert.equal('authSecretFile' in fromEnv || 'peerSecretFile' in fromEnv, false);
  });

  it('refuses a secret given both inline and as a file, an unreadable file and an empty one', () => {
    const read = (path: string): string => {
      if (path === '/empty') return '\n';
      throw new Error('ENOENT');
    };
    const usage = (args: string[], pattern: RegExp) =>
      assert.throws(() => toServerOptions(parseServeConfig(args, {}), read), pattern);
    usage(['--auth-secret', 'x'.repeat(32), '--auth-secret-file', '/empty'], /only one of/);
    usage(['--peer-secret', 'x'.repeat(16), '--peer-secret-file', '/empty'], /only one of/);
    usage(['--auth-secret-file', '/missing'], /--auth-secret-file: cannot read \/missing/);
    usage(['--peer-secret-file', '/empty'], /--peer-secret-file: \/empty is empty/);
    usage(['--webhook', 'https://h/x'], /--webhook needs --webhook-secret/);
    usage(['--webhook', 'ftp://h/x', '--webhook-secret', 'x'.repeat(16)], /http/);
    usage(['--webhook-secret', 'x'.repeat(16), '--webhook-secret-file', '/empty'], /only one of/);
  });
});

describe('stateweave serve --help', () => {
  it('lists every flag with its environment variable and default', () => {
    const result = runCli(['serve', '--help']);
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stdout.trim(), serveUsage().trim());
    for (const flag of SERVE_FLAGS) {
      const line = result.stdout
        .split('\n')
        .find((l) => l.trimStart().startsWith(`--${flag.flag} `));
      assert.ok(line, `--${flag.flag} is listed`);
      assert.ok(
        line.includes(envName(flag.flag)),
        `${envName(flag.flag)} on the line of --${flag.flag}`,
      );
      assert.ok(line.includes(`default ${flag.default}`), `default of --${flag.flag}`);
      assert.ok(line.includes(flag.help), `help of --${flag.flag}`);
    }
    assert.equal(runCli(['serve', '-h']).stdout, result.stdout);
  });

  it('exits 2 with one sentence naming the flag and where the flags are listed, without starting', () => {
    const result = runCli(['serve', '--port', 'abc']);
    assert.equal(result.status, 2);
    assert.equal(
      result.stderr,
      'stateweave: --port: expected an integer from 0 to 65535, got "abc"\n(stateweave serve --help lists the flags)\n',
    );
    assert.equal(result.stdout, '');
  });
});
