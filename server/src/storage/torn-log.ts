/**
 * What LevelDB's recovery will silently drop: a record at the end of its newest
 * write-ahead log that was never completely written (the process died in the
 * middle of a write). LevelDB drops such a tail without a word; the node reads
 * the log's framing first, so it can say what was dropped.
 *
 * Framing (leveldb/doc/log_format.md): 32 KiB blocks of records, each with a
 * 7-byte header (crc32c: 4, length: 2 little-endian, type: 1; types FULL=1,
 * FIRST=2, MIDDLE=3, LAST=4) and `length` bytes of payload; fewer than 7 bytes
 * left in a block are padding. A write is complete once a FULL or LAST record has
 * all its bytes. Only the framing is read, not the checksums.
 */
import { open, readdir } from 'node:fs/promises';
import { join } from 'node:path';

const BLOCK = 32 * 1024;
const HEADER = 7;
const FULL = 1;
const LAST = 4;

export interface TornTail {
  /** The log file, relative to the database directory. */
  readonly file: string;
  /** Its size in bytes. */
  readonly bytes: number;
  /** Bytes after the last complete write, which recovery will drop. */
  readonly droppedBytes: number;
}

/** The end offset of the last complete write in a log's bytes. */
export const lastCompleteWrite = (log: Uint8Array): number => {
  let pos = 0;
  let complete = 0;
  while (pos < log.byteLength) {
    const left = BLOCK - (pos % BLOCK);
    if (left < HEADER) {
      pos += left;
      continue;
    }
    if (pos + HEADER > log.byteLength) break;
    const length = log[pos + 4]! | (log[pos + 5]! << 8);
    const type = log[pos + 6]!;
    // A zero header is preallocated space (mmap'd logs), not a record.
    if (type === 0 && length === 0) break;
    if (pos + HEADER + length > log.byteLength) break;
    pos += HEADER + length;
    if (type === FULL || type === LAST) complete = pos;
  }
  return complete;
};

/** The torn tail of the newest log in a LevelDB directory, if any (before it is opened). */
export const findTornTail = async (dir: string): Promise<TornTail | undefined> => {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return undefined; // a new database: nothing to recover
  }
  const file = names
    .filter((n) => /^\d+\.log$/.test(n))
    .sort((a, b) => parseInt(b, 10) - parseInt(a, 10))[0];
  if (file === undefined) return undefined;
  const handle = await open(join(dir, file), 'r');
  try {
    const bytes = await handle.readFile();
    const complete = lastCompleteWrite(bytes);
    return complete < bytes.byteLength
      ? { file, bytes: bytes.byteLength, droppedBytes: bytes.byteLength - complete }
      : undefined;
  } finally {
    await handle.close();
  }
};
