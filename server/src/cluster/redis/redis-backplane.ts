/**
 * The Backplane on Redis (backplane.ts).
 *
 * - Membership: a sorted set renewed by heartbeat (redis-membership.ts).
 * - Document channels: one stream per document, `<prefix>:doc:{<name>}`: the
 *   braces make every key of one document hash to one slot of a Redis Cluster.
 *   Each entry carries the sender's node id (`n`), its boot id (`b`, so a node
 *   skips only its own entries of this run, not those of a run that crashed)
 *   and the message (`m`). Streams are capped (MAXLEN ~) and expire when idle,
 *   and trimmed to what every live home has stored (stream-trim.ts).
 * - Directed messages: one inbox stream per node, `<prefix>:inbox:{<nodeId>}`.
 *   A node that joins (or is back from an outage) writes a line with no
 *   message to each other member's inbox; an inbox entry from a node that the
 *   reader does not count live makes it renew its membership at once, so it
 *   pushes its appends to the newcomer from then on, not from its next
 *   heartbeat (until then the newcomer heard of them only from a later push
 *   or its sweep: the bench's one-off stall at the start of the load).
 * - Records: a string key `<prefix>:record:{<name>}`, and an entry naming it in
 *   the stream `<prefix>:records`, which every node follows, when it changes.
 * - Push (stream-push.ts): every append to a document stream is one script that
 *   also publishes the entry, with the id before it, on each other live node's
 *   channel of the stream; a reader whose position is that id applies it with
 *   no read, any other reads the stream from its position (bell-reader.ts). A
 *   node's own entries are not pushed back to it: the script's reply moves its
 *   position past them.
 * - Reading (stream-reader.ts): document streams by their pushes; the inbox
 *   and the records stream on a single Redis by one blocking XREAD loop, on a
 *   Redis Cluster by a bell (SPUBLISH on the stream's name) after each append.
 *   A document resumes from the last id this node read, or from the start of
 *   what the stream retains. A position found trimmed (position-check.ts) is a
 *   `channelGap` of that document: its state vectors are exchanged at once.
 * - Redis or Redis Cluster: the URL may name either (redis-connection.ts finds
 *   out). Every command touches the keys of one slot: a document's keys share
 *   its `{name}` tag, and a record is written and announced in two commands.
 * - Owner leases and fenced writes: redis-leases.ts (keys of one document
 *   share its `{<name>}` slot).
 *
 * Commands are never queued while Redis is unreachable (enableOfflineQueue:
 * false): a message that cannot leave is dropped and counted, and when Redis
 * is back `resync` makes the replicator exchange state vectors, which repairs
 * what was dropped — also when Redis restarted without its data.
 */
import { randomUUID } from 'node:crypto';
import { isDocName } from '../../doc-name.js';
import { StateweaveError } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { BackplaneEvents, BackplaneState, LeasingBackplane } from '../backplane.js';
import type { BackplaneMetrics } from '../backplane-metrics.js';
import { createMembership } from './redis-membership.js';
import { createRedisConnection } from './redis-connection.js';
import { createRedisLeases } from './redis-leases.js';
import { createStreamReader, type StreamEntry } from './stream-reader.js';
import { createStreamTrim } from './stream-trim.js';
import { appendAndPush } from './stream-push.js';
import { isNodeId, type NodeId } from '../../node-id.js';

export interface RedisBackplaneOptions {
  /** `redis://[user:password@]host:port[/db]` or `rediss://` (TLS). */
  readonly url: string;
  readonly nodeId: NodeId;
  readonly logger: Logger;
  readonly metrics: BackplaneMetrics;
  /** Prefix of every key, so clusters can share a Redis. @default 'sw' */
  readonly keyPrefix?: string;
  /** @default 1000 */
  readonly heartbeatMs?: number;
  /** A node silent this long is gone. @default 5000 */
  readonly memberTtlMs?: number;
  /** Entries a document stream keeps (approximately). @default 1000 */
  readonly maxStreamEntries?: number;
  /** A document stream nobody wrote to for this long is deleted. @default 86400000 (24 h) */
  readonly streamIdleMs?: number;
}

const INBOX_MAX = String(10_000);
/** Read positions of closed documents kept for a cheap reopen. */
const MAX_REMEMBERED_POSITIONS = 10_000;

export const createRedisBackplane = (options: RedisBackplaneOptions): LeasingBackplane => {
  const { nodeId, metrics } = options;
  const log = options.logger.child({ component: 'redis-backplane' });
  const prefix = options.keyPrefix ?? 'sw';
  const maxEntries = String(options.maxStreamEntries ?? 1000);
  const streamIdleMs = options.streamIdleMs ?? 86_400_000;
  const docPrefix = `${prefix}:doc:{`;
  const docKey = (doc: string): string => `${docPrefix}${doc}}`;
  const inboxOf = (id: string): string => `${prefix}:inbox:{${id}}`;
  const inbox = inboxOf(nodeId);
  const recordsKey = `${prefix}:records`;
  const recordKey = (name: string): string => `${prefix}:record:{${name}}`;
  const boot = randomUUID();

  const redis = createRedisConnection({
    url: options.url,
    nodeId,
    onReady: () => onReady(),
    onClose: () => onClose(),
    onError: (err) => noteError(err),
  });
  /** The command client (a Redis, or a Cluster that routes each command to its slot's master). */
  let cmd = redis.client();
  let events: BackplaneEvents | undefined;
  let state: BackplaneState = 'connecting';
  let downSince = 0;
  let joined = false;
  let closed = false;
  let lastError: string | undefined;
  const counts = { out: 0, dropped: 0, in: 0, outages: 0, gaps: 0 };
  const positions = new Map<string, string>();
  const expiresRenewedAt = new Map<string, number>();

  const membership = createMembership({
    redis: () => cmd,
    key: `${prefix}:members`,
    nodeId,
    boot,
    ...(options.heartbeatMs !== undefined ? { heartbeatMs: options.heartbeatMs } : {}),
    ...(options.memberTtlMs !== undefined ? { ttlMs: options.memberTtlMs } : {}),
    onChange: (up, down) => {
      metrics.members.set(membership.members().length);
      for (const id of down) if (id !== nodeId) events?.memberDown(id);
      for (const id of up) if (id !== nodeId) events?.memberUp(id);
    },
    onError: (err) => noteError(err),
  });

  /** Logged once per outage (ioredis reports every failed reconnect); the last reason is in status(). */
  const noteError = (err: Error): void => {
    if (lastError === undefined) log.warn({ reason: err.message }, 'redis unreachable');
    lastError = err.message;
  };

  const onEntries = (key: string, entries: readonly StreamEntry[]): void => {
    if (key === recordsKey) {
      for (const { fields } of entries) {
        const name = fields.get('r')?.toString();
        if (name !== undefined && fields.get('b')?.toString() !== boot) events?.recordChanged(name);
      }
      return;
    }
    const name = key === inbox ? undefined : key.slice(docPrefix.length, -1);
    // A key is read from Redis: one whose name fails the rule is no channel of this node.
    if (name !== undefined && !isDocName(name)) return;
    const doc = name;
    for (const { fields } of entries) {
      const from = fields.get('n')?.toString();
      // Someone this node does not count live wrote to it: it may have just joined.
      if (doc === undefined && from !== undefined && isNodeId(from) && !membership.isLive(from))
        membership.beatSoon();
      const message = fields.get('m');
      // No message: a join's announcement (above), or a wake-up written by earlier versions.
      if (from === undefined || message === undefined) continue;
      if (!isNodeId(from)) continue; // not written by a node
      if (fields.get('b')?.toString() === boot) continue; // our own, of this run
      counts.in++;
      metrics.messages.inc({ direction: 'in' });
      const bytes = new Uint8Array(message.buffer, message.byteOffset, message.byteLength);
      if (doc === undefined) events?.direct(from, bytes);
      else events?.docMessage(doc, from, bytes);
    }
  };

  /** This node's position in `key` was trimmed away: what it missed must come another way. */
  const onGap = (key: string): void => {
    counts.gaps++;
    metrics.gaps.inc();
    log.info({ stream: key }, 'stream position trimmed: exchanging state vectors');
    if (key.startsWith(docPrefix)) {
      const doc = key.slice(docPrefix.length, -1);
      if (events?.channelGap && isDocName(doc)) return events.channelGap(doc);
    }
    events?.resync(); // the inbox or the records stream: repair everything
  };
  const reader = createStreamReader({
    nodeId,
    onEntries,
    onError: noteError,
    onGap,
    pushed: (key) => key.startsWith(docPrefix),
  });
  const leases = createRedisLeases({
    redis: () => cmd,
    publishCommand: () => redis.publishCommand(),
    pushTo: () => others(),
    prefix,
    nodeId,
    boot,
    streamKey: docKey,
    positionOf: (doc) => reader.position(docKey(doc)) ?? positions.get(doc),
    maxStreamEntries: maxEntries,
    idleMs: streamIdleMs,
  });
  const trim = createStreamTrim({
    redis: () => cmd,
    nodeId,
    streamKey: docKey,
    marksKey: (doc) => `${prefix}:stored:{${doc}}`,
    idleMs: streamIdleMs,
    onError: noteError,
  });
  /** Lease operations need Redis now: they are never queued. */
  const whenReady = <T>(run: () => Promise<T>): Promise<T> =>
    cmd.status === 'ready' ? run() : Promise.reject(new StateweaveError('BACKPLANE_DOWN'));

  /** The live members but this node: whom an append is pushed to. */
  const others = (): NodeId[] => membership.members().filter((id) => id !== nodeId);

  /**
   * Appends to a document stream and pushes the entry to the other live nodes
   * (stream-push.ts); the reply moves this node's own position past it.
   */
  const push = async (doc: string, message: Uint8Array): Promise<void> => {
    const key = docKey(doc);
    const own = reader.ownAppend(key);
    try {
      const { previous, id } = await appendAndPush(cmd, key, {
        maxLen: maxEntries,
        node: nodeId,
        boot,
        message: Buffer.from(message.buffer, message.byteOffset, message.byteLength),
        publish: redis.publishCommand(),
        to: others(),
      });
      own.done(previous, id);
    } catch (err) {
      own.failed();
      throw err;
    }
  };

  /** Sends one command that appends a message; false (and counted) when Redis is down. */
  const append = (command: () => Promise<unknown>): boolean => {
    if (closed || cmd.status !== 'ready') {
      counts.dropped++;
      metrics.messages.inc({ direction: 'dropped' });
      return false;
    }
    counts.out++;
    metrics.messages.inc({ direction: 'out' });
    command().catch((err: unknown) => {
      counts.dropped++;
      metrics.messages.inc({ direction: 'dropped' });
      noteError(err as Error);
    });
    return true;
  };

  const appendToInbox = (key: string, message: Uint8Array): Promise<unknown> => {
    const body = Buffer.from(message.buffer, message.byteOffset, message.byteLength);
    const added = cmd.xadd(key, 'MAXLEN', '~', INBOX_MAX, '*', 'n', nodeId, 'b', boot, 'm', body);
    redis.ring(key);
    return added;
  };

  /**
   * Tells every other member that this node is live (a line with no message in
   * its inbox, which it skips but for renewing its membership at once).
   */
  const announce = (): void => {
    for (const id of others()) {
      const key = inboxOf(id);
      cmd.xadd(key, 'MAXLEN', '~', INBOX_MAX, '*', 'n', nodeId, 'b', boot).catch(noteError);
      redis.ring(key);
    }
  };

  /** First connection: start after the newest inbox entry (older ones were for an earlier run). */
  const join = async (): Promise<void> => {
    const last = await cmd.xrevrange(inbox, '+', '-', 'COUNT', 1);
    reader.follow(inbox, last[0]?.[0] ?? '0');
    const lastRecord = await cmd.xrevrange(recordsKey, '+', '-', 'COUNT', 1);
    reader.follow(recordsKey, lastRecord[0]?.[0] ?? '0');
    await membership.start();
    metrics.members.set(membership.members().length);
    joined = true;
    reader.start(redis.source());
    announce();
    for (const id of membership.members()) if (id !== nodeId) events?.memberUp(id);
    log.info({ members: membership.members() }, 'joined the cluster on redis');
  };

  const onReady = (): void => {
    cmd = redis.client();
    const wasDown = state === 'down';
    state = 'connected';
    metrics.up.set(1);
    lastError = undefined;
    if (!joined) {
      join().catch((err: unknown) => noteError(err as Error));
      return;
    }
    if (!wasDown) return;
    log.info({ downForMs: Date.now() - downSince }, 'redis is back: resyncing');
    // Away longer than the members' TTL, this node was dropped: the others count it again.
    membership.beat().then(announce, noteError);
    events?.resync();
  };
  const onClose = (): void => {
    if (state === 'connected') {
      counts.outages++;
      metrics.outages.inc();
      downSince = Date.now();
    }
    if (state !== 'connecting' || joined) state = 'down';
    metrics.up.set(0);
  };

  return {
    nodeId,
    async start(handlers) {
      events = handlers;
      metrics.up.set(0);
      // Not awaited to the end: a node starts (and serves locally) while Redis is unreachable.
      await redis.connect().catch((err: unknown) => noteError(err as Error));
    },
    members: () => membership.members(),
    isLive: (id) => membership.isLive(id),
    send: (to, frame) => append(() => appendToInbox(inboxOf(to), frame)),
    publish(doc, message) {
      const key = docKey(doc);
      const sent = append(() => push(doc, message));
      const now = Date.now();
      if (sent && now - (expiresRenewedAt.get(doc) ?? 0) > 60_000) {
        expiresRenewedAt.set(doc, now);
        cmd.pexpire(key, streamIdleMs).catch(noteError);
      }
      return sent;
    },
    publishAcked: (doc, message) =>
      whenReady(async () => {
        counts.out++;
        metrics.messages.inc({ direction: 'out' });
        await push(doc, message);
      }),
    acquireLease: (doc, ttlMs, fromStart) =>
      whenReady(() => leases.acquire(doc, ttlMs, fromStart ?? false)),
    renewLease: (doc, token, ttlMs) => whenReady(() => leases.renew(doc, token, ttlMs)),
    releaseLease: (doc, token) => whenReady(() => leases.release(doc, token)),
    publishFenced: (doc, token, message, records) =>
      whenReady(() => leases.publishFenced(doc, token, message, records)),
    getDocRecord: (doc, key) => whenReady(() => leases.getRecord(doc, key)),
    async getRecord(name) {
      if (cmd.status !== 'ready') throw new StateweaveError('BACKPLANE_DOWN');
      const value = await cmd.getBuffer(recordKey(name));
      return value === null
        ? undefined
        : new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
    },
    async putRecord(name, value) {
      if (cmd.status !== 'ready') throw new StateweaveError('BACKPLANE_DOWN');
      const body = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
      // Two commands, not one MULTI: on a Redis Cluster the two keys live in different
      // slots. The announcement follows the write, so whoever reads it finds the value.
      await cmd.set(recordKey(name), body);
      await cmd.xadd(recordsKey, 'MAXLEN', '~', '1000', '*', 'r', name, 'n', nodeId, 'b', boot);
      redis.ring(recordsKey);
    },
    channelPosition: (doc) => reader.position(docKey(doc)),
    markStored: (doc, position, homes) => trim.mark(doc, position, homes),
    subscribe(doc) {
      const key = docKey(doc);
      reader.follow(key, positions.get(doc) ?? '0');
      positions.delete(doc);
    },
    unsubscribe(doc) {
      const last = reader.unfollow(docKey(doc));
      expiresRenewedAt.delete(doc);
      if (last === undefined) return;
      positions.set(doc, last);
      if (positions.size > MAX_REMEMBERED_POSITIONS)
        positions.delete(positions.keys().next().value!);
    },
    status: () => ({
      kind: 'redis',
      state,
      members: membership.members(),
      channels: Math.max(0, reader.size - 2), // minus the inbox and the records stream
      messagesOut: counts.out,
      messagesDropped: counts.dropped,
      messagesIn: counts.in,
      outages: counts.outages,
      gaps: counts.gaps,
      ...(state === 'down' ? { downForMs: Date.now() - downSince } : {}),
      ...(lastError !== undefined ? { lastError } : {}),
    }),
    async close() {
      if (closed) return;
      closed = true;
      membership.stop();
      reader.stop();
      if (cmd.status === 'ready') await membership.leave().catch(noteError);
      await redis.close();
    },
  };
};
