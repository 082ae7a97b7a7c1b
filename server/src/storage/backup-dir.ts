/**
 * Writes a backup stream (backup-format.ts) into a new LevelDB directory that
 * `stateweave serve --data DIR` starts from. The copy is built beside the target
 * (`DIR.partial`) and renamed into place only once complete, so a directory
 * named DIR is always a whole backup.
 */
import { rename, rm, stat } from 'node:fs/promises';
import { Level } from 'level';
import type { BackupEntry } from './backup-format.js';

export interface BackupWritten {
  readonly entries: number;
  readonly bytes: number;
}

const BATCH_OPS = 1000;
const BATCH_BYTES = 4 * 1024 * 1024;

const exists = async (path: string): Promise<boolean> =>
  stat(path).then(
    () => true,
    () => false,
  );

export const writeBackupDir = async (
  dir: string,
  entries: AsyncIterable<BackupEntry>,
  onProgress?: (written: BackupWritten) => void,
): Promise<BackupWritten> => {
  if (await exists(dir)) throw new Error(`${dir} exists: a backup goes into a new directory`);
  const partial = `${dir}.partial`;
  await rm(partial, { recursive: true, force: true });
  const db = new Level<string, Uint8Array>(partial, { keyEncoding: 'utf8', valueEncoding: 'view' });
  await db.open();
  let count = 0;
  let bytes = 0;
  try {
    let batch = db.batch();
    let batchBytes = 0;
    for await (const [key, value] of entries) {
      batch.put(key, value);
      batchBytes += key.length + value.byteLength;
      count++;
      bytes += value.byteLength;
      if (batch.length >= BATCH_OPS || batchBytes >= BATCH_BYTES) {
        await batch.write();
        batch = db.batch();
        batchBytes = 0;
        onProgress?.({ entries: count, bytes });
      }
    }
    await batch.write();
    await db.close();
  } catch (err) {
    await db.close().catch(() => undefined);
    await rm(partial, { recursive: true, force: true });
    throw err;
  }
  await rename(partial, dir);
  return { entries: count, bytes };
};
