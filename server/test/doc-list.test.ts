/**
 * The document list's last change (`GET /v1/docs`: `lastChange`), on real
 * LevelDB with nodes as child processes: a write moves it, and it survives a
 * compaction and a restart, with the history on and off (with it off, the
 * compaction deletes the change index the history would have kept).
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as Y from 'yjs';
import { createLevelStore } from '../src/storage/level-store.js';
import { runCli } from './helpers/cli.js';
import { docName } from './helpers/doc-name.js';
import { spawnNode, stopChild, tempDir, type ChildNode } from './helpers/node.js';

interface Listed {
  readonly name: string;
  readonly bytes: number;
  readonly lastChange: string | null;
}

const write = async (url: string, name: string, text: string): Promise<void> => {
  const doc = new Y.Doc();
  doc.getText('t').insert(0, text);
  const res = await fetch(`${url}/v1/docs/${name}/updates`, {
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream' },
    body: Y.encodeStateAsUpdate(doc),
  });
  assert.equal(res.status, 200, await res.text());
};

const listed = async (url: string, name: string): Promise<Listed | undefined> => {
  const res = await fetch(`${url}/v1/docs?prefix=${encodeURIComponent(name)}`);
  assert.equal(res.status, 200);
  const body = (await res.json()) as { docs: Listed[] };
  return body.docs.find((d) => d.name === name);
};

/** Waits past the millisecond so two writes get different times. */
const tick = () => new Promise((resolve) => setTimeout(resolve, 15));

for (const retention of ['0', '30d']) {
  describe(
    `the document list's lastChange, --history-retention ${retention}`,
    { timeout: 120_000 },
    () => {
      const dirs: Array<{ path: string; remove: () => Promise<void> }> = [];
      let node: ChildNode | undefined;
      after(async () => {
        if (node) await stopChild(node);
        for (const d of dirs) await d.remove();
      });

      it('moves with a write and survives a compaction and a restart', async () => {
        const dir = await tempDir();
        dirs.push(dir);
        const args = ['--history-retention', retention];
        node = await spawnNode(dir.path, args);
        const before = Date.now();
        await write(node.url, 'notes/a', 'one');
        await write(node.url, 'notes/b', 'other');
        const first = await listed(node.url, 'notes/a');
        assert.ok(first?.lastChange, 'an ISO time');
        const t1 = Date.parse(first.lastChange);
        assert.equal(new Date(t1).toISOString(), first.lastChange);
        assert.ok(t1 >= before && t1 <= Date.now(), `${first.lastChange} is the write's time`);
        assert.ok(first.bytes > 0);

        await tick();
        await write(node.url, 'notes/a', 'two');
        const second = await listed(node.url, 'notes/a');
        assert.ok(Date.parse(second!.lastChange!) > t1, 'a write moves lastChange');
        assert.ok(second!.bytes > first.bytes);
        const other = await listed(node.url, 'notes/b');

        // A clean stop compacts what it has open: the log is merged into the snapshot.
        await stopChild(node);
        node = undefined;
        const store = await createLevelStore(dir.path);
        try {
          const stored = await store.load(docName('notes/a'));
          assert.equal(stored.compacted, true, 'compacted at shutdown');
          assert.equal(stored.logLength, 0);
          const [summary] = await store.docs({ prefix: 'notes/a', limit: 1 });
          assert.equal(summary?.bytes, stored.bytes, 'the size is what a load reads');
          assert.equal(summary?.lastChange, Date.parse(second!.lastChange!));
        } finally {
          await store.close();
        }

        node = await spawnNode(dir.path, args);
        const restarted = await listed(node.url, 'notes/a');
        assert.equal(
          restarted?.lastChange,
          second!.lastChange,
          'the same after compaction and restart',
        );
        assert.equal((await listed(node.url, 'notes/b'))?.lastChange, other?.lastChange);
        // The CLI prints the same: name, bytes, last change.
        const cli = await runCli(['list', '--url', node.url, '--prefix', 'notes/']);
        assert.equal(cli.code, 0, cli.stderr);
        assert.deepEqual(cli.stdout.trim().split('\n'), [
          `notes/a\t${restarted!.bytes}\t${restarted!.lastChange}`,
          `notes/b\t${other!.bytes}\t${other!.lastChange}`,
        ]);
        await tick();
        await write(node.url, 'notes/a', 'three');
        assert.ok(
          Date.parse((await listed(node.url, 'notes/a'))!.lastChange!) >
            Date.parse(second!.lastChange!),
        );
      });
    },
  );
}
