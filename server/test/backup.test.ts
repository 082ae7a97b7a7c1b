/**
 * Online backup (docs/history.md, "Backup"): the stream format refuses a copy
 * cut short; `stateweave backup` of a node under write load gives a copy from
 * one instant (the keys of a sequential writer are a gap-free prefix across all
 * documents); a copy of a quiet node restores byte-equal documents, the same
 * list and the same versions; only an admin token may take one. Real LevelDB,
 * nodes and the CLI as child processes.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import * as Y from 'yjs';
import { mintToken } from '../src/auth/tokens.js';
import { decodeBackup, encodeBackup, type BackupEntry } from '../src/storage/backup-format.js';
import { runCli } from './helpers/cli.js';
import { httpEditor } from './helpers/history.js';
import { spawnNode, stopChild, tempDir, type ChildNode } from './helpers/node.js';

const SECRET = 'backup-test-secret-of-32-bytes-or-more';

const collect = async <T>(items: AsyncIterable<T>): Promise<T[]> => {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
};
const from = async function* <T>(items: readonly T[]): AsyncGenerator<T> {
  yield* items;
};

describe('backup format', () => {
  const entries: BackupEntry[] = [
    ['s\0doc', new Uint8Array([1, 2, 3])],
    ['l\0doc\0é', new Uint8Array(70_000).fill(7)],
    ['m\0seq', new Uint8Array()],
  ];

  it('round-trips entries through chunks of any size', async () => {
    const bytes = Buffer.concat(await collect(encodeBackup(from(entries), 100)));
    for (const size of [1, 7, 4096, bytes.byteLength]) {
      const chunks: Uint8Array[] = [];
      for (let i = 0; i < bytes.byteLength; i += size) chunks.push(bytes.subarray(i, i + size));
      const back = await collect(decodeBackup(from(chunks)));
      assert.deepEqual(
        back.map(([k, v]) => [k, Buffer.from(v).toString('hex')]),
        entries.map(([k, v]) => [k, Buffer.from(v).toString('hex')]),
        `chunks of ${size}`,
      );
    }
  });

  it('refuses a stream cut short, one with a wrong count, and one that is not a backup', async () => {
    const bytes = Buffer.concat(await collect(encodeBackup(from(entries))));
    await assert.rejects(
      collect(decodeBackup(from([bytes.subarray(0, bytes.byteLength - 5)]))),
      /ended before its trailer/,
    );
    const wrongCount = Buffer.from(bytes);
    wrongCount.writeBigUInt64BE(9n, wrongCount.byteLength - 8);
    await assert.rejects(collect(decodeBackup(from([wrongCount]))), /says 9 entries, 3 arrived/);
    await assert.rejects(
      collect(decodeBackup(from([Buffer.from('{"name":"x"}\n')]))),
      /not a Stateweave backup/,
    );
  });
});

describe('stateweave backup', { timeout: 240_000 }, () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  after(async () => {
    for (const step of cleanup.reverse()) await step();
  });
  const env = { ...process.env, STATEWEAVE_AUTH_SECRET: SECRET };
  const start = async (dir: string): Promise<ChildNode> => {
    const node = await spawnNode(dir, ['--compact-after-updates', '8'], 0, env);
    cleanup.push(() => stopChild(node));
    return node;
  };
  const names = ['bk/0', 'bk/1', 'bk/2', 'bk/3'];

  const keysIn = async (node: ChildNode, token: string): Promise<Set<string>> => {
    const keys = new Set<string>();
    for (const name of names) {
      const res = await fetch(`${node.url}/v1/docs/${name}`, {
        headers: { accept: 'application/octet-stream', authorization: `Bearer ${token}` },
      });
      if (res.status === 404) continue;
      const doc = new Y.Doc();
      Y.applyUpdate(doc, new Uint8Array(await res.arrayBuffer()));
      for (const key of doc.getMap('m').keys()) keys.add(key);
    }
    return keys;
  };

  it('copies a node under write load as of one instant, and a quiet node byte for byte', async () => {
    const dir = await tempDir();
    cleanup.push(() => dir.remove());
    const node = await start(join(dir.path, 'live'));
    const admin = await mintToken({
      secret: SECRET,
      docs: ['*'],
      rights: ['read', 'write', 'admin'],
      ttl: '10m',
    });
    const reader = await mintToken({ secret: SECRET, docs: ['*'], rights: ['read'], ttl: '10m' });
    const editors = names.map((name) => httpEditor(node.url, name, admin));
    // One writer, one write at a time, round robin: write i is stored before write i+1 starts.
    let acked = 0;
    let writing = true;
    const writer = (async () => {
      for (let i = 0; writing && i < 5000; i++) {
        await editors[i % names.length]!.edit((d) => d.getMap('m').set(`w${i}`, i));
        acked = i + 1;
      }
    })();
    while (acked < 60) await new Promise((r) => setTimeout(r, 20));

    const refused = await runCli([
      'backup',
      '--url',
      node.url,
      '--out',
      join(dir.path, 'no'),
      '--token',
      reader,
    ]);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /FORBIDDEN|admin/);

    const ackedBefore = acked;
    const live = await runCli([
      'backup',
      '--url',
      node.url,
      '--out',
      join(dir.path, 'copy1'),
      '--token',
      admin,
    ]);
    assert.equal(live.code, 0, live.stderr);
    assert.match(live.stderr, /backup: \d+ entries, \d+ bytes in \d+ ms/);
    const ackedAfter = acked;
    // Let some writes land after the copy, then stop.
    while (acked < ackedAfter + 20) await new Promise((r) => setTimeout(r, 20));
    writing = false;
    await writer;

    const again = await runCli([
      'backup',
      '--url',
      node.url,
      '--out',
      join(dir.path, 'copy1'),
      '--token',
      admin,
    ]);
    assert.notEqual(again.code, 0, 'an existing directory is never overwritten');
    assert.match(again.stderr, /exists/);

    const restored = await start(join(dir.path, 'copy1'));
    const keys = await keysIn(restored, admin);
    const count = keys.size;
    assert.ok(
      count >= ackedBefore,
      `every write acknowledged before the backup (${ackedBefore}) is in it (${count})`,
    );
    assert.ok(
      count <= ackedAfter + 1,
      `nothing from after the backup (${count} > ${ackedAfter + 1})`,
    );
    const expected = Array.from({ length: count }, (_, i) => `w${i}`).sort();
    assert.deepEqual(
      [...keys].sort(),
      expected,
      'one instant: a gap-free prefix of the writes across documents',
    );
    await stopChild(restored);

    // A quiet node: the copy restores the same bytes, the same list, the same history.
    const quiet = await runCli([
      'backup',
      '--url',
      node.url,
      '--out',
      join(dir.path, 'copy2'),
      '--token',
      admin,
    ]);
    assert.equal(quiet.code, 0, quiet.stderr);
    const twin = await start(join(dir.path, 'copy2'));
    const get = async (n: ChildNode, path: string, accept = 'application/json') => {
      const res = await fetch(`${n.url}${path}`, {
        headers: { accept, authorization: `Bearer ${admin}` },
      });
      assert.equal(res.status, 200, `${path}: ${res.status}`);
      return Buffer.from(await res.arrayBuffer());
    };
    assert.deepEqual(
      JSON.parse((await get(twin, '/v1/docs?prefix=bk/')).toString()),
      JSON.parse((await get(node, '/v1/docs?prefix=bk/')).toString()),
    );
    // Export with history, from the node and from the stopped first copy: the kept
    // changes, replayed in cursor order, rebuild each document's exported state.
    for (const args of [
      ['--url', node.url, '--token', admin],
      ['--data', join(dir.path, 'copy1')],
    ]) {
      const exported = await runCli(['export', ...args, '--prefix', 'bk/', '--history']);
      assert.equal(exported.code, 0, exported.stderr);
      const lines = exported.stdout.trim().split('\n');
      assert.equal(lines.length, names.length);
      for (const line of lines) {
        const { name, update, history } = JSON.parse(line) as {
          name: string;
          update: string;
          history: Array<{ cursor: string; update: string; writers: string[] }>;
        };
        const cursors = history.map((h) => Number(h.cursor));
        assert.deepEqual(
          cursors,
          [...cursors].sort((a, b) => a - b),
          `${name}: in order`,
        );
        const replayed = new Y.Doc();
        for (const h of history) Y.applyUpdate(replayed, Buffer.from(h.update, 'base64'));
        const state = new Y.Doc();
        Y.applyUpdate(state, Buffer.from(update, 'base64'));
        assert.deepEqual(replayed.getMap('m').toJSON(), state.getMap('m').toJSON(), name);
        assert.ok(
          history.every((h) => h.writers.length > 0),
          `${name}: writers kept`,
        );
      }
    }
    for (const name of names) {
      const a = await get(node, `/v1/docs/${name}`, 'application/octet-stream');
      const b = await get(twin, `/v1/docs/${name}`, 'application/octet-stream');
      assert.ok(a.equals(b), `${name}: byte-equal state`);
      assert.deepEqual(
        JSON.parse((await get(twin, `/v1/docs/${name}/versions`)).toString()),
        JSON.parse((await get(node, `/v1/docs/${name}/versions`)).toString()),
        `${name}: the same versions`,
      );
    }
  });
});
