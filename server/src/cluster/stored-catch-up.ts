/**
 * Catch-up of stored documents when a link comes up. Live replication only
 * covers documents someone has open; a document written here while a peer was
 * unreachable (or acknowledged here just before this node crashed) and closed
 * since would otherwise reach that peer only when it is next opened. So on every
 * link up, each side walks its store and runs one sync round (state vectors,
 * then only the missing updates) for each document the peer is a home of, a few
 * at a time, stopping if the link drops again.
 */
import type { Logger } from '../log.js';
import type { Placement } from './placement.js';

export interface StoredCatchUpOptions {
  readonly listDocs: () => AsyncIterable<string>;
  readonly placement: Placement;
  readonly isConnected: (nodeId: string) => boolean;
  readonly syncOnce: (doc: string, peer: string, timeoutMs: number) => Promise<void>;
  readonly logger: Logger;
  /** Documents synced at once per peer. @default 4 */
  readonly concurrency?: number;
  /** Longest wait for one document's answer. @default 5000 */
  readonly timeoutMs?: number;
}

export interface StoredCatchUp {
  onLinkUp(peer: string): void;
  close(): void;
}

export const createStoredCatchUp = (options: StoredCatchUpOptions): StoredCatchUp => {
  const concurrency = options.concurrency ?? 4;
  const timeoutMs = options.timeoutMs ?? 5000;
  const running = new Set<string>();
  let closed = false;

  const run = async (peer: string): Promise<void> => {
    const started = Date.now();
    const inFlight = new Set<Promise<void>>();
    let synced = 0;
    for await (const doc of options.listDocs()) {
      if (closed || !options.isConnected(peer)) break;
      if (!options.placement.homesFor(doc).includes(peer)) continue;
      const job = options.syncOnce(doc, peer, timeoutMs).finally(() => inFlight.delete(job));
      inFlight.add(job);
      synced++;
      if (inFlight.size >= concurrency) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
    options.logger.info(
      { peer, documents: synced, ms: Date.now() - started },
      'stored documents caught up with peer',
    );
  };

  return {
    onLinkUp(peer) {
      if (closed || running.has(peer)) return;
      running.add(peer);
      run(peer)
        .catch((err: unknown) =>
          options.logger.warn({ peer, err }, 'catch-up of stored documents failed'),
        )
        .finally(() => running.delete(peer));
    },
    close() {
      closed = true;
    },
  };
};
