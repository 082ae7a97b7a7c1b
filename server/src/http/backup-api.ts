/**
 * `GET /v1/backup` (admin right): the whole store as of one instant, streamed
 * in the backup format (storage/backup-format.ts) while the node keeps serving.
 * `stateweave backup --out DIR` turns it into a data directory.
 */
import { once } from 'node:events';
import express, { type Router } from 'express';
import { requireRight, type AccessPolicy } from '../auth/access.js';
import { StateweaveError } from '../errors.js';
import { encodeBackup, type BackupEntry } from '../storage/backup-format.js';
import type { Logger } from '../log.js';
import { bearerToken } from '../auth/bearer.js';

export interface BackupApiOptions {
  readonly policy: AccessPolicy;
  /** The store's snapshot, or undefined when this store cannot be backed up (in-memory). */
  readonly dump: () => AsyncIterable<BackupEntry> | undefined;
  readonly logger: Logger;
}

export const createBackupApi = ({ policy, dump, logger }: BackupApiOptions): Router => {
  const router = express.Router();
  router.get('/v1/backup', async (req, res) => {
    requireRight(await policy.authenticate(bearerToken(req)), 'admin');
    const entries = dump();
    if (entries === undefined)
      throw new StateweaveError('BAD_REQUEST', "this node's store cannot be backed up (in memory)");
    const started = Date.now();
    let bytes = 0;
    res.writeHead(200, {
      'content-type': 'application/octet-stream',
      'content-disposition': 'attachment; filename="stateweave.backup"',
      'cache-control': 'no-store',
    });
    const closed = new AbortController();
    res.on('close', () => closed.abort());
    try {
      for await (const chunk of encodeBackup(entries)) {
        if (closed.signal.aborted) break;
        bytes += chunk.byteLength;
        // Backpressure: a slow reader holds the snapshot, not the node's memory.
        if (!res.write(chunk)) await once(res, 'drain', { signal: closed.signal });
      }
    } catch (err) {
      // Headers are out: the missing trailer tells the reader the copy is incomplete.
      if (!closed.signal.aborted) logger.error({ err }, 'backup stream failed');
      res.destroy();
      return;
    }
    res.end();
    logger.info({ bytes, ms: Date.now() - started }, 'backup streamed');
  });
  return router;
};
