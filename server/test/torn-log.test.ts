/**
 * A torn last write in LevelDB's log (the process died in the middle of it):
 * the store says how many bytes recovery drops, and everything written before
 * it is still there. The chaos suite does this to a node killed with -9.
 */
import { docName } from './helpers/doc-name.js';
import { it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { appendFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import * as Y from 'yjs';
import { createLevelStore } from '../src/storage/level-store.js';
import { findTornTail, lastCompleteWrite } from '../src/storage/torn-log.js';
import type { TornTail } from '../src/storage/torn-log.js';
import { tempDir } from './helpers/node.js';

const update = (text: string): Uint8Array => {
  const doc = new Y.Doc();
  doc.getText('text').insert(0, text);
  return Y.encodeStateAsUpdate(doc);
};

/** A record header that promises `length` bytes, followed by only `given` of them. */
const tornRecord = (length: number, given: number): Uint8Array => {
  const bytes = new Uint8Array(7 + given).fill(0x5a);
  bytes[4] = length & 0xff;
  bytes[5] = length >> 8;
  bytes[6] = 1; // FULL
  return bytes;
};

it('finds nothing in a clean log and the torn bytes of a half-written record', async (t: TestContext) => {
  const dir = await tempDir();
  t.after(() => dir.remove());
  const store = await createLevelStore(dir.path);
  for (let i = 0; i < 20; i++) await store.append(docName('doc'), update(`u${i}`));
  await store.close();
  assert.equal(await findTornTail(dir.path), undefined, 'a clean log has no torn tail');

  const log = (await readdir(dir.path)).filter((n) => n.endsWith('.log')).sort()[0]!;
  await appendFile(join(dir.path, log), tornRecord(900, 120));
  const tail = await findTornTail(dir.path);
  assert.deepEqual(
    { file: tail?.file, droppedBytes: tail?.droppedBytes },
    { file: log, droppedBytes: 127 },
  );

  const told: TornTail[] = [];
  const reopened = await createLevelStore(dir.path, { onTornTail: (x) => told.push(x) });
  t.after(() => reopened.close());
  assert.equal(told.length, 1);
  const loaded = await reopened.load(docName('doc'));
  assert.equal(loaded.logLength, 20, 'every complete write survives');
});

it('skips block padding and counts a FIRST without its LAST as torn', () => {
  const block = 32 * 1024;
  const log = new Uint8Array(block + 7 + 10);
  // One FULL record filling the first block up to 3 bytes of padding.
  const first = block - 3 - 7;
  log[4] = first & 0xff;
  log[5] = first >> 8;
  log[6] = 1;
  // In the second block: a FIRST record of 10 bytes, never followed by its LAST.
  log[block + 4] = 10;
  log[block + 6] = 2;
  assert.equal(lastCompleteWrite(log), block - 3);
});
