/**
 * An in-process Backplane medium for tests and embedding: several nodes in one
 * process join one medium. It keeps the port's contract (asynchronous delivery,
 * channels that retain recent messages, resume from the last read position)
 * and can cut a node off and heal it, which drops its messages both ways and
 * ends with `resync`, the way a Redis outage does. Owner leases and fenced
 * publishes are checked against one in-process table on the medium's clock
 * (`now`, so a test can move time).
 */
import type { DocName } from '../doc-name.js';
import { StateweaveError } from '../errors.js';
import { validateNodeId, type NodeId } from '../node-id.js';
import type {
  BackplaneEvents,
  BackplaneStatus,
  ChannelMessage,
  LeasingBackplane,
} from './backplane.js';

export interface MemoryBackplaneMedium {
  /** A backplane for `nodeId` on this medium (it joins on `start`); throws for an invalid id. */
  join(nodeId: string): LeasingBackplane;
  /** Until `heal`, everything `nodeId` sends or would receive is dropped. */
  cut(nodeId: string): void;
  heal(nodeId: string): void;
}

interface Message {
  readonly seq: number;
  readonly from: NodeId;
  readonly bytes: Uint8Array;
}

interface Member {
  readonly events: BackplaneEvents;
  readonly channels: Map<DocName, number>;
  /** Where reading stopped on channels unsubscribed since: a resubscribe resumes there. */
  readonly stoppedAt: Map<string, number>;
  cut: boolean;
}

export interface MemoryBackplaneOptions {
  /** Messages a channel retains for late subscribers. @default 1000 */
  readonly retain?: number;
  /** The medium's clock (lease expiry). @default Date.now */
  readonly now?: () => number;
}

interface Lease {
  holder: NodeId;
  token: number;
  expiresAt: number;
}

export const createMemoryBackplaneMedium = (
  options: MemoryBackplaneOptions = {},
): MemoryBackplaneMedium => {
  const retain = options.retain ?? 1000;
  const members = new Map<NodeId, Member>();
  const channels = new Map<DocName, Message[]>();
  const records = new Map<string, Uint8Array>();
  const received = new Map<string, number>();
  const outages = new Map<string, number>();
  const leases = new Map<string, Lease>();
  const docRecords = new Map<string, Map<string, Uint8Array>>();
  const now = options.now ?? Date.now;
  let seq = 0;
  // Delivery is asynchronous, like any real medium: never inside the caller's stack.
  const later = (fn: () => void): void => void setImmediate(fn);

  const deliverChannel = (doc: DocName, to: NodeId): void => {
    const member = members.get(to);
    const after = member?.channels.get(doc);
    if (!member || after === undefined || member.cut) return;
    for (const message of channels.get(doc) ?? []) {
      if (message.seq <= after) continue;
      member.channels.set(doc, message.seq);
      if (message.from === to) continue;
      received.set(to, (received.get(to) ?? 0) + 1);
      member.events.docMessage(doc, message.from, message.bytes);
    }
  };

  const announce = (nodeId: NodeId, up: boolean): void => {
    for (const [id, member] of members) {
      if (id === nodeId) continue;
      later(() => (up ? member.events.memberUp(nodeId) : member.events.memberDown(nodeId)));
    }
  };

  return {
    join(id) {
      // Where a node id enters this medium.
      const nodeId = validateNodeId(id);
      const counts = { out: 0, dropped: 0 };
      const self = (): Member | undefined => members.get(nodeId);
      const drop = (): false => {
        counts.dropped++;
        return false;
      };
      const requireUp = (): void => {
        if (self()?.cut || !self()) throw new StateweaveError('BACKPLANE_DOWN');
      };
      const holds = (doc: string, token: number): boolean => {
        const lease = leases.get(doc);
        return lease?.holder === nodeId && lease.token === token && lease.expiresAt > now();
      };
      /** What the channel holds after where this node read it last, from others (or all of it). */
      const backlog = (doc: DocName, fromStart: boolean): ChannelMessage[] => {
        const member = self();
        const after = fromStart
          ? 0
          : (member?.channels.get(doc) ?? member?.stoppedAt.get(doc) ?? 0);
        return (channels.get(doc) ?? [])
          .filter((m) => m.seq > after && (fromStart || m.from !== nodeId))
          .map((m) => ({ from: m.from, message: m.bytes.slice() }));
      };
      const backplane: LeasingBackplane = {
        nodeId,
        async start(events) {
          members.set(nodeId, { events, channels: new Map(), stoppedAt: new Map(), cut: false });
          for (const id of members.keys()) if (id !== nodeId) later(() => events.memberUp(id));
          announce(nodeId, true);
        },
        members: () => [...members.keys()].sort(),
        isLive: (id) => members.has(id),
        send(to, frame) {
          const target = members.get(to);
          if (self()?.cut || !target) return drop();
          counts.out++;
          const bytes = frame.slice();
          later(() => {
            if (target.cut || members.get(to) !== target) return;
            target.events.direct(nodeId, bytes);
          });
          return true;
        },
        publish(doc, message) {
          if (self()?.cut) return drop();
          counts.out++;
          const list = channels.get(doc) ?? [];
          list.push({ seq: ++seq, from: nodeId, bytes: message.slice() });
          if (list.length > retain) list.splice(0, list.length - retain);
          channels.set(doc, list);
          for (const id of members.keys()) later(() => deliverChannel(doc, id));
          return true;
        },
        async getRecord(name) {
          if (self()?.cut) throw new StateweaveError('BACKPLANE_DOWN');
          return records.get(name)?.slice();
        },
        async putRecord(name, value) {
          if (self()?.cut) throw new StateweaveError('BACKPLANE_DOWN');
          records.set(name, value.slice());
          for (const [id, member] of members) {
            if (id !== nodeId) later(() => member.cut || member.events.recordChanged(name));
          }
        },
        async publishAcked(doc, message) {
          if (!backplane.publish(doc, message)) throw new StateweaveError('BACKPLANE_DOWN');
        },
        async acquireLease(doc, ttlMs, fromStart = false) {
          requireUp();
          const lease = leases.get(doc);
          const at = now();
          if (lease && lease.holder !== nodeId && lease.expiresAt > at)
            return { granted: false, holder: lease.holder, remainingMs: lease.expiresAt - at };
          const token = (lease?.token ?? 0) + 1;
          leases.set(doc, { holder: nodeId, token, expiresAt: at + ttlMs });
          return { granted: true, token, backlog: backlog(doc, fromStart) };
        },
        async renewLease(doc, token, ttlMs) {
          requireUp();
          if (!holds(doc, token)) return false;
          leases.get(doc)!.expiresAt = now() + ttlMs;
          return true;
        },
        async releaseLease(doc, token) {
          requireUp();
          if (holds(doc, token)) leases.get(doc)!.expiresAt = 0;
        },
        async publishFenced(doc, token, message, written) {
          requireUp();
          const kept = docRecords.get(doc) ?? new Map<string, Uint8Array>();
          if (!holds(doc, token))
            throw new StateweaveError('FENCED', `lease token ${token} of ${doc} is not current`);
          if (written.some((r) => kept.has(r.key)))
            throw new StateweaveError('FENCED', `a record of this write already exists in ${doc}`);
          for (const r of written) kept.set(r.key, r.value.slice());
          docRecords.set(doc, kept);
          if (message) backplane.publish(doc, message);
        },
        async getDocRecord(doc, key) {
          requireUp();
          return docRecords.get(doc)?.get(key)?.slice();
        },
        subscribe(doc) {
          const member = self();
          if (!member || member.channels.has(doc)) return;
          member.channels.set(doc, member.stoppedAt.get(doc) ?? 0);
          later(() => deliverChannel(doc, nodeId));
        },
        unsubscribe(doc) {
          const member = self();
          const at = member?.channels.get(doc);
          if (!member || at === undefined) return;
          member.channels.delete(doc);
          member.stoppedAt.set(doc, at);
        },
        status: (): BackplaneStatus => ({
          kind: 'memory',
          state: self()?.cut ? 'down' : 'connected',
          members: [...backplane.members()],
          channels: self()?.channels.size ?? 0,
          messagesOut: counts.out,
          messagesDropped: counts.dropped,
          messagesIn: received.get(nodeId) ?? 0,
          outages: outages.get(nodeId) ?? 0,
        }),
        async close() {
          if (!members.delete(nodeId)) return;
          announce(nodeId, false);
        },
      };
      return backplane;
    },
    cut(id) {
      const nodeId = validateNodeId(id);
      const member = members.get(nodeId);
      if (!member || member.cut) return;
      member.cut = true;
      outages.set(nodeId, (outages.get(nodeId) ?? 0) + 1);
    },
    heal(id) {
      const nodeId = validateNodeId(id);
      const member = members.get(nodeId);
      if (!member?.cut) return;
      member.cut = false;
      // Like a reader resuming from its last id: what the channels retained arrives now.
      for (const doc of member.channels.keys()) later(() => deliverChannel(doc, nodeId));
      later(() => member.events.resync());
    },
  };
};
