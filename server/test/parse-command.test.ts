/**
 * Every `stateweave` command reads its flags through parseCommand: a mistake in
 * them is one sentence, then the command's usage, and exit code 2.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough, Readable } from 'node:stream';
import { CliError } from '../src/cli-failure.js';
import { backupCommand } from '../src/cli/backup-cli.js';
import { deleteCommand } from '../src/cli/delete-cli.js';
import { exportDocs, importDocs, type CliIo } from '../src/cli/export-import.js';
import { restoreCommand, versionsCommand } from '../src/cli/history-cli.js';
import { listCommand } from '../src/cli/list-cli.js';
import { parseCommand } from '../src/cli/parse-command.js';
import { deploy } from '../src/functions/deploy-cli.js';
import { runCli } from './helpers/cli.js';

const USAGE = 'Usage: stateweave thing --url URL [--json]\n';

const parse = (args: string[]) =>
  parseCommand({ args, options: { url: { type: 'string' }, json: { type: 'boolean' } } }, USAGE);

/** Matches a usage error: exit code 2, `sentence` first, the usage text after a blank line. */
const usageErrorWith =
  (sentence: RegExp) =>
  (err: unknown): boolean => {
    assert.ok(err instanceof CliError, String(err));
    assert.equal(err.exitCode, 2);
    const [first, ...rest] = err.message.split('\n\n');
    assert.match(first ?? '', sentence);
    assert.equal(rest.join('\n\n'), USAGE);
    return true;
  };

describe('parseCommand', () => {
  it('returns the flags and values of a correct command line', () => {
    assert.deepEqual(
      { ...parse(['--url', 'http://a', '--json']).values },
      {
        url: 'http://a',
        json: true,
      },
    );
  });

  it('answers an unknown flag with a usage error', () => {
    assert.throws(() => parse(['--bogus']), usageErrorWith(/^Unknown option '--bogus'/));
  });

  it('answers a flag without its value with a usage error', () => {
    assert.throws(
      () => parse(['--url']),
      usageErrorWith(/^Option '--url <value>' argument missing$/),
    );
  });

  it('answers a value given to a boolean flag, and a stray argument, with a usage error', () => {
    assert.throws(() => parse(['--json=1']), usageErrorWith(/^Option '--json' does not take/));
    assert.throws(() => parse(['extra']), usageErrorWith(/^Unexpected argument 'extra'/));
  });

  it('leaves a mistake in the options it was given (a bug, not the user’s) as it is', () => {
    const config = { args: [], options: { url: { type: 'text' } } } as unknown as {
      args: string[];
    };
    assert.throws(
      () => parseCommand(config, USAGE),
      (err: unknown) =>
        !(err instanceof CliError) && (err as { code?: string }).code === 'ERR_INVALID_ARG_TYPE',
    );
  });

  /** Every command that runs in-process, with its stdout (deploy prints lines through its own callback). */
  const commands = async (): Promise<{
    out: () => string;
    list: Array<[string, (args: string[]) => Promise<void>]>;
  }> => {
    let out = '';
    const stdout = new PassThrough();
    stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    const io: CliIo = { stdin: Readable.from([]), stdout, note: () => undefined, env: {} };
    const { backtestCommand } = await import('../src/cli/backtest-cli.js');
    return {
      out: () => out,
      list: [
        ['deploy', (args) => deploy(args, {}, (line) => void (out += line))],
        ['export', (args) => exportDocs(args, io)],
        ['import', (args) => importDocs(args, io)],
        ['backup', (args) => backupCommand(args, io)],
        ['backtest', (args) => backtestCommand(args, io)],
        ['versions', (args) => versionsCommand(args, io)],
        ['restore', (args) => restoreCommand(args, io)],
        ['delete', (args) => deleteCommand(args, io)],
        ['list', (args) => listCommand(args, io)],
      ],
    };
  };

  it('is what every command answers an unknown flag with: its usage, exit code 2', async () => {
    for (const [name, command] of (await commands()).list)
      await assert.rejects(command(['--bogus']), (err: unknown) => {
        assert.ok(err instanceof CliError, `${name}: ${String(err)}`);
        assert.equal(err.exitCode, 2, name);
        assert.match(err.message, /^Unknown option '--bogus'/, name);
        assert.match(err.message, new RegExp(`\n\nUsage: stateweave ${name} `), name);
        return true;
      });
    // token lives in main.ts, which also prints the error: the real command, once.
    const run = await runCli(['token', '--bogus'], { env: { PATH: process.env.PATH } });
    assert.equal(run.code, 2, run.stderr);
    assert.match(run.stderr, /^stateweave: Unknown option '--bogus'\n\nUsage: stateweave token /);
    assert.doesNotMatch(run.stderr, /\n\s+at /, 'no stack trace');
  });

  it('lets every command answer --help and -h with its usage on stdout', async () => {
    const { out, list } = await commands();
    for (const [name, command] of list)
      for (const flag of ['--help', '-h']) {
        const before = out().length;
        await command([flag]);
        await new Promise((resolve) => setImmediate(resolve));
        assert.match(
          out().slice(before),
          new RegExp(`^Usage: stateweave ${name} `),
          `${name} ${flag}`,
        );
      }
  });
});
