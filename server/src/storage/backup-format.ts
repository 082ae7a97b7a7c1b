/**
 * The byte stream of a backup (`GET /v1/backup`, `stateweave backup`): every
 * key and value of the store as of one instant, so a node started on the copy
 * has exactly that content, history and records included.
 *
 *   "SWBACKUP1\n"
 *   repeated:  u32 key length, key (UTF-8), u32 value length, value
 *   trailer:   u32 0xFFFFFFFF, u64 number of entries
 *
 * Big-endian. The trailer tells a complete copy from one cut short (a dropped
 * connection): a reader without it refuses the copy. Pure: no I/O.
 */
export const BACKUP_MAGIC = 'SWBACKUP1\n';
const END = 0xffffffff;
/** Largest key or value a reader accepts (a corrupt length must not allocate gigabytes). */
const MAX_PART = 512 * 1024 * 1024;

export type BackupEntry = readonly [key: string, value: Uint8Array];

/** Encodes entries into chunks of about `chunkBytes` (fewer, larger writes). */
export const encodeBackup = async function* (
  entries: AsyncIterable<BackupEntry>,
  chunkBytes = 64 * 1024,
): AsyncGenerator<Uint8Array> {
  let parts: Uint8Array[] = [Buffer.from(BACKUP_MAGIC)];
  let size = BACKUP_MAGIC.length;
  let count = 0n;
  for await (const [key, value] of entries) {
    const k = Buffer.from(key, 'utf8');
    const head = Buffer.alloc(4);
    head.writeUInt32BE(k.byteLength);
    const mid = Buffer.alloc(4);
    mid.writeUInt32BE(value.byteLength);
    parts.push(head, k, mid, value);
    size += 8 + k.byteLength + value.byteLength;
    count++;
    if (size >= chunkBytes) {
      yield Buffer.concat(parts);
      parts = [];
      size = 0;
    }
  }
  const trailer = Buffer.alloc(12);
  trailer.writeUInt32BE(END, 0);
  trailer.writeBigUInt64BE(count, 4);
  parts.push(trailer);
  yield Buffer.concat(parts);
};

/** Decodes a backup stream; throws if it is not one, or if it ends before its trailer. */
export const decodeBackup = async function* (
  chunks: AsyncIterable<Uint8Array>,
): AsyncGenerator<BackupEntry> {
  let buf = Buffer.alloc(0);
  let offset = 0;
  let magicSeen = false;
  let count = 0n;
  let ended = false;
  for await (const chunk of chunks) {
    if (ended) throw new Error('the backup has bytes after its end');
    buf = Buffer.concat([buf.subarray(offset), chunk]);
    offset = 0;
    if (!magicSeen) {
      if (buf.byteLength < BACKUP_MAGIC.length) continue;
      if (buf.subarray(0, BACKUP_MAGIC.length).toString('latin1') !== BACKUP_MAGIC)
        throw new Error('not a Stateweave backup (the stream does not start with SWBACKUP1)');
      magicSeen = true;
      offset = BACKUP_MAGIC.length;
    }
    for (;;) {
      if (buf.byteLength - offset < 4) break;
      const keyLength = buf.readUInt32BE(offset);
      if (keyLength === END) {
        if (buf.byteLength - offset < 12) break;
        const total = buf.readBigUInt64BE(offset + 4);
        if (total !== count) throw new Error(`the backup says ${total} entries, ${count} arrived`);
        offset += 12;
        ended = true;
        if (offset !== buf.byteLength) throw new Error('the backup has bytes after its end');
        break;
      }
      if (keyLength > MAX_PART) throw new Error('corrupt backup: a key length is out of range');
      if (buf.byteLength - offset < 8 + keyLength) break;
      const valueLength = buf.readUInt32BE(offset + 4 + keyLength);
      if (valueLength > MAX_PART) throw new Error('corrupt backup: a value length is out of range');
      const start = offset + 8 + keyLength;
      if (buf.byteLength < start + valueLength) break;
      const key = buf.subarray(offset + 4, offset + 4 + keyLength).toString('utf8');
      // A copy: the next chunk replaces `buf`.
      const value = new Uint8Array(buf.subarray(start, start + valueLength));
      offset = start + valueLength;
      count++;
      yield [key, value];
    }
  }
  if (!ended)
    throw new Error(
      `the backup ended before its trailer after ${count} entries (connection lost?): not a complete copy`,
    );
};
