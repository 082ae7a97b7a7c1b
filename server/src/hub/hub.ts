/**
 * The hub owns the rooms and their lifecycle:
 *
 *   loading ──▶ active ──(idle for idleUnloadMs)──▶ draining ──▶ unloaded
 *                  ▲                                    │
 *                  └──────(a write failed: retry)───────┘
 *
 * - Concurrent first opens share one load; nobody is answered before it ends.
 * - A failed load removes the room at once (no half-loaded room, no leak).
 * - An idle room is unloaded only after its last change is durable.
 * - An open that arrives while a room drains waits for the drain and then loads
 *   the stored state afresh, so it can never attach to a room being destroyed.
 */
import type { DocName } from '../doc-name.js';
import type { Origin } from '../origin.js';
import { StateweaveError } from '../errors.js';
import type { Deletion } from '../storage/store.js';
import { Room, type RoomOptions } from './room.js';

export interface HubOptions extends Omit<RoomOptions, 'onChange' | 'onCorrupt'> {
  /** Unload a document this long after its last lease is released. */
  readonly idleUnloadMs: number;
}

/**
 * Why a lease is held. A `replica` lease (replication's own) keeps the room
 * loaded like any other but is not a use: replication syncs a document while
 * someone on this node uses it (DocDemand), and must not count itself.
 */
export type LeasePurpose = 'use' | 'replica';

/** Who uses the documents of this node, as replication needs to know (cluster/replicator.ts). */
export interface DocDemand {
  /** True while a lease other than a replica's is held on `name`. */
  inUse(name: DocName): boolean;
  /**
   * Tells `listener` of every lease taken for use (not a replica's), from inside
   * open(), before the caller has its lease. Returns the function that stops it.
   */
  onUse(listener: (name: DocName) => void): () => void;
  /**
   * Tells `listener` once a document was removed (Hub.remove), so replication lets
   * go of its room. Returns the function that stops it.
   */
  onRemoved(listener: (name: DocName) => void): () => void;
}

/** Told after every change that was not replayed from storage (function change triggers). */
export type ChangeListener = (doc: DocName, origin: Origin | undefined) => void;

/** Keeps a room loaded while held; `release()` exactly once. */
export interface RoomLease {
  readonly room: Room;
  release(): void;
}

export interface Hub extends DocDemand {
  /** Loads (or joins) the document's room and holds it until released. @default purpose 'use' */
  open(name: DocName, purpose?: LeasePurpose): Promise<RoomLease>;
  /**
   * Applies an update from any origin; resolves once it is durable. `creator`
   * (a token subject) is held to the new-document limit (Room.applyUpdate).
   */
  applyUpdate(name: DocName, update: Uint8Array, origin: Origin, creator?: string): Promise<void>;
  /** Runs `fn` against the loaded document. */
  withRoom<T>(name: DocName, fn: (room: Room) => T | Promise<T>): Promise<T>;
  /** The room if it is in memory (for tests and introspection), without loading. */
  peek(name: DocName): Room | undefined;
  /** Leases held on `name` now, replicas' too (for tests and introspection). */
  leases(name: DocName): number;
  /** Tells `listener` of every change (see ChangeListener). Returns the function that stops it. */
  onChange(listener: ChangeListener): () => void;
  readonly openDocuments: number;
  /**
   * Deletes a document: its connections are closed with DOC_DELETED, writes in
   * flight finish first, then everything stored for it is removed. An open that
   * arrives meanwhile waits, and then finds the document empty. With `deletion`
   * the store keeps its tombstone and a line in the change feed (Store.remove):
   * resolves with that line's seq (0 without).
   */
  remove(name: DocName, deletion?: Deletion): Promise<number>;
  /**
   * Stored documents in name order, after `after`, that start with `prefix` and
   * pass `keep`, at most `limit` of them, with their stored size and last change
   * (the store's summaries: the cost is the page, not the documents). `next`
   * continues after the last name looked at; null when there is no more.
   */
  list(query: DocListQuery): Promise<DocListPage>;
  /** Flushes and unloads every room; resolves with the names that could not be flushed. */
  close(): Promise<DocName[]>;
}

export interface DocListQuery {
  readonly prefix: string;
  /** Exclusive: the last name of the previous page. */
  readonly after?: string;
  readonly limit: number;
  /** Which names the caller may see (its read right). */
  readonly keep: (name: DocName) => boolean;
}

export interface DocListEntry {
  readonly name: DocName;
  /** Bytes of snapshot and log in the store (what a load reads). */
  readonly bytes: number;
  /** Epoch ms when its last change was stored; 0 when unknown. */
  readonly lastChange: number;
}

export interface DocListPage {
  readonly docs: DocListEntry[];
  /** Where the next page starts (pass as `after`); null at the end. */
  readonly next: string | null;
}

/** Names one list call looks at, at most, whatever `keep` lets through (a bounded page). */
const LIST_SCAN_LIMIT = 10_000;

/**
 * A lease is held by every open connection: a class with one shared `release`
 * rather than an object literal with a closure (idle memory is per connection).
 */
class Lease implements RoomLease {
  readonly room: Room;
  private released = false;

  constructor(
    private readonly entry: Entry,
    private readonly name: DocName,
    private readonly use: boolean,
    private readonly onRelease: (name: DocName, entry: Entry, use: boolean) => void,
  ) {
    this.room = entry.room;
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    this.onRelease(this.name, this.entry, this.use);
  }
}

interface Entry {
  readonly room: Room;
  readonly ready: Promise<void>;
  /** Holders (connections, HTTP requests, replication) that keep the room from unloading. */
  leases: number;
  /** The leases among them that are uses (not a replica's). */
  uses: number;
  idleTimer?: NodeJS.Timeout;
  /** Set while draining; resolves when the drain ended (either way). */
  drained?: Promise<void>;
}

export const createHub = (options: HubOptions): Hub => {
  const { logger, metrics } = options;
  const entries = new Map<DocName, Entry>();
  const useListeners = new Set<(name: DocName) => void>();
  const removeListeners = new Set<(name: DocName) => void>();
  const removed = (name: DocName): void => {
    for (const listener of removeListeners) listener(name);
  };
  const changeListeners = new Set<ChangeListener>();
  let closing = false;

  const subscribe = <T>(listeners: Set<T>, listener: T): (() => void) => {
    listeners.add(listener);
    return () => void listeners.delete(listener);
  };

  const onChange: ChangeListener = (doc, origin) => {
    for (const listener of changeListeners) listener(doc, origin);
  };

  // One options object for every room (a copy per room was half a KB of each idle document).
  const roomOptions: RoomOptions = {
    ...options,
    onChange,
    onCorrupt: (room) => {
      const entry = entries.get(room.name);
      if (entry?.room === room) evict(room.name, entry);
    },
  };

  const createEntry = (name: DocName): Entry => {
    const room = new Room(name, roomOptions);
    const entry: Entry = {
      room,
      leases: 0,
      uses: 0,
      ready: room.load().then(
        () => logger.debug({ doc: name }, 'document loaded'),
        (err: unknown) => {
          // No leak on a failed load: the next open starts from scratch.
          if (entries.get(name) === entry) entries.delete(name);
          room.destroy();
          metrics.openDocuments.set(entries.size);
          metrics.errors.inc({ code: 'LOAD_FAILED' });
          logger.error({ doc: name, err }, 'document load failed');
          throw err instanceof StateweaveError
            ? err
            : new StateweaveError('LOAD_FAILED', `cannot load ${name}`, { cause: err });
        },
      ),
    };
    entries.set(name, entry);
    metrics.openDocuments.set(entries.size);
    return entry;
  };

  const unload = (name: DocName, entry: Entry): void => {
    entry.idleTimer = undefined;
    if (entry.leases > 0 || entry.room.state !== 'active') return;
    entry.room.state = 'draining';
    entry.drained = (async () => {
      const flushed = await entry.room.flush();
      if (flushed && entry.room.logLength > 0) await entry.room.compact();
      // A failed write leaves changes only in memory: keep the room and try later.
      if (!flushed || entry.leases > 0) {
        entry.room.state = 'active';
        if (!flushed)
          logger.warn({ doc: name }, 'unload postponed: unsaved changes after a failed write');
        if (entry.leases === 0) scheduleUnload(name, entry);
        return;
      }
      entries.delete(name);
      entry.room.destroy();
      metrics.openDocuments.set(entries.size);
      logger.debug({ doc: name }, 'document unloaded');
    })().finally(() => {
      entry.drained = undefined;
    });
  };

  /**
   * Drops a room whose in-memory document can no longer be trusted (Yjs threw
   * half-way through an update). Its earlier changes are flushed first; the bad
   * update was never stored or sent, so the next open loads a clean document.
   */
  const evict = (name: DocName, entry: Entry): void => {
    if (entry.drained || entry.room.state !== 'active') return;
    clearTimeout(entry.idleTimer);
    entry.room.state = 'draining';
    entry.room.closeSubscribers(
      new StateweaveError('INTERNAL', 'the document is being reloaded; reconnect'),
    );
    metrics.errors.inc({ code: 'INVALID_UPDATE' });
    entry.drained = (async () => {
      await entry.room.flush();
      if (entries.get(name) === entry) entries.delete(name);
      entry.room.destroy();
      metrics.openDocuments.set(entries.size);
      logger.error(
        { doc: name },
        'document evicted after an update failed inside Yjs; it reloads from storage',
      );
    })().finally(() => {
      entry.drained = undefined;
    });
  };

  const scheduleUnload = (name: DocName, entry: Entry): void => {
    clearTimeout(entry.idleTimer);
    entry.idleTimer = setTimeout(() => unload(name, entry), options.idleUnloadMs);
    entry.idleTimer.unref();
  };

  const releaseLease = (name: DocName, entry: Entry, use: boolean): void => {
    if (use) entry.uses--;
    if (--entry.leases === 0 && !closing && entry.room.state === 'active')
      scheduleUnload(name, entry);
  };

  const hub: Hub = {
    async open(name, purpose = 'use') {
      const use = purpose === 'use';
      for (;;) {
        // Checked on every pass: a drain this open waited for may have ended
        // after close() began, and a new room then would outlive the store.
        if (closing) throw new StateweaveError('SHUTTING_DOWN');
        const entry = entries.get(name) ?? createEntry(name);
        if (entry.drained) {
          await entry.drained;
          continue;
        }
        entry.leases++;
        if (use) entry.uses++;
        clearTimeout(entry.idleTimer);
        entry.idleTimer = undefined;
        try {
          await entry.ready;
        } catch (err) {
          entry.leases--;
          if (use) entry.uses--;
          throw err;
        }
        if (use) for (const listener of useListeners) listener(name);
        return new Lease(entry, name, use, releaseLease);
      }
    },

    async applyUpdate(name, update, origin, creator) {
      const lease = await hub.open(name);
      try {
        await lease.room.applyUpdate(update, origin, creator);
      } finally {
        lease.release();
      }
    },

    async withRoom(name, fn) {
      const lease = await hub.open(name);
      try {
        return await fn(lease.room);
      } finally {
        lease.release();
      }
    },

    async remove(name, deletion) {
      let seq = 0;
      for (;;) {
        const entry = entries.get(name);
        if (!entry) break;
        if (entry.drained) {
          await entry.drained;
          continue;
        }
        clearTimeout(entry.idleTimer);
        try {
          await entry.ready;
        } catch {
          break; // a failed load left no room behind
        }
        if (entry.drained) continue; // someone began a drain while it loaded
        entry.room.state = 'draining';
        entry.room.closeSubscribers(new StateweaveError('DOC_DELETED', `${name} was deleted`));
        entry.drained = (async () => {
          // Writes already accepted land before the removal, never after it.
          await entry.room.flush();
          seq = await options.store.remove(name, deletion);
          if (entries.get(name) === entry) entries.delete(name);
          entry.room.destroy();
          metrics.openDocuments.set(entries.size);
          logger.info({ doc: name }, 'document deleted');
        })().finally(() => {
          entry.drained = undefined;
        });
        await entry.drained;
        removed(name);
        return seq;
      }
      seq = await options.store.remove(name, deletion);
      removed(name);
      logger.info({ doc: name }, 'document deleted');
      return seq;
    },

    async list({ prefix, after, limit, keep }) {
      const docs: DocListEntry[] = [];
      let cursor = after;
      // Names the token may not read are skipped, but never more than LIST_SCAN_LIMIT of them.
      for (let scanned = 0; scanned < LIST_SCAN_LIMIT;) {
        const want = Math.min(limit - docs.length, LIST_SCAN_LIMIT - scanned);
        const page = await options.store.docs({
          prefix,
          limit: want,
          ...(cursor !== undefined ? { after: cursor } : {}),
        });
        for (const doc of page) {
          scanned++;
          cursor = doc.name;
          if (keep(doc.name)) docs.push(doc);
        }
        if (page.length < want) return { docs, next: null };
        if (docs.length >= limit) break;
      }
      return { docs, next: cursor ?? null };
    },

    peek: (name) => entries.get(name)?.room,

    leases: (name) => entries.get(name)?.leases ?? 0,

    inUse: (name) => (entries.get(name)?.uses ?? 0) > 0,

    onUse: (listener) => subscribe(useListeners, listener),
    onRemoved: (listener) => subscribe(removeListeners, listener),

    onChange: (listener) => subscribe(changeListeners, listener),

    get openDocuments() {
      return entries.size;
    },

    async close() {
      closing = true;
      const unsaved: DocName[] = [];
      await Promise.all(
        [...entries].map(async ([name, entry]) => {
          clearTimeout(entry.idleTimer);
          await entry.drained;
          try {
            await entry.ready;
          } catch {
            return; // a failed load holds nothing to flush
          }
          if (!(await entry.room.flush())) unsaved.push(name);
          else if (entry.room.logLength > 0) await entry.room.compact();
          entry.room.destroy();
        }),
      );
      entries.clear();
      metrics.openDocuments.set(0);
      return unsaved;
    },
  };
  return hub;
};
