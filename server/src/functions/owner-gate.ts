/**
 * The port through which `owner` calls run on a cluster that fences them
 * (the Redis backplane: cluster/owner-leases.ts implements it, server.ts passes
 * it in). Without one, an owner call runs like any other on the primary.
 */
import type { StoreRecord } from '../storage/store.js';

export interface OwnerGate {
  /**
   * Resolves with the fencing token of this node's lease of `doc` once it holds
   * it and has caught the document up; rejects when it cannot get it in time.
   */
  hold(doc: string): Promise<number>;
  /** The idempotency record an owner call on `doc` stored cluster-wide, if any. */
  record(doc: string, key: string): Promise<Uint8Array | undefined>;
  /**
   * Makes a batch's write (`update` of `doc` and its idempotency `records`)
   * durable cluster-wide only if `token` is still the document's lease, before
   * it is applied here; rejects FENCED (nothing written) otherwise.
   */
  commit(
    doc: string,
    token: number,
    update: Uint8Array | null,
    records: readonly StoreRecord[],
  ): Promise<void>;
  /** A write `commit` accepted could not be applied here: hold must catch up again. */
  abandon(doc: string, token: number): void;
}
