/**
 * `--placement presence`: a document's homes, and so its `owner` primary,
 * follow the region where its users are.
 *
 * - Each node counts, per open document, its active users: the awareness
 *   states of its own clients (Room.localPresenceCount), or, when more, the
 *   writers that wrote the document here within `writerActiveMs` (each client
 *   connection one, HTTP writes one), so a document written from one region by
 *   clients without presence (sensors, scripts) follows its writes. It sends
 *   every other node one report of them (presence-codec.ts) when they change,
 *   at most once a tick, and every `refreshMs` anyway. A report names the
 *   sender's region, so every node also learns where the others are.
 * - Every node sums the reports it holds per document and region, and runs the
 *   same decision (presence-decision.ts, with its dwell time and margin) on the
 *   same inputs, so they agree on the region up to the time a report takes to
 *   arrive plus one tick.
 * - Placement (placement.ts) then puts the best-ranked node of that region
 *   first: the first home and the primary; the other homes stay as rendezvous
 *   hashing ranks them. The replicators open channels to the new home by
 *   state vector, and a home that no longer is one and has no users of its own
 *   releases the document as they already do when membership changes.
 * - `onMove` tells the owner leases (on a backplane) to give up what this node
 *   is no longer primary of; the new primary takes the lease with a greater
 *   fencing token before it runs anything.
 */
import type { DocName } from '../doc-name.js';
import type { NodeId } from '../node-id.js';
import type { Logger } from '../log.js';
import type { Origin } from '../origin.js';
import { decodePresenceReport, encodePresenceReport } from './presence-codec.js';
import { decideRegion, type DecisionOptions, type RegionChoice } from './presence-decision.js';

export interface PresencePlacementOptions {
  readonly selfId: NodeId;
  /** This node's region (`--region`); without one its users count nowhere. */
  readonly region: string | undefined;
  /**
   * Active users of `doc` on this node (its own clients' awareness states),
   * or undefined once the document is no longer open here.
   */
  readonly usersOn: (doc: DocName) => number | undefined;
  /** Sends a frame to another node; false when it certainly did not leave. */
  readonly send: (to: NodeId, frame: Uint8Array) => boolean;
  /** The other nodes reachable now. */
  readonly peers: () => readonly NodeId[];
  readonly logger: Logger;
  /** The region leading `doc` changed (its homes and primary may have). */
  readonly onMove?: (doc: DocName) => void;
  /** @default 10000 */
  readonly dwellMs?: number;
  /** How long a writer counts as an active user of a document after its last write. @default 10000 */
  readonly writerActiveMs?: number;
  /** @default 0.25 */
  readonly margin?: number;
  /** @default 300000 */
  readonly forgetMs?: number;
  /** A report is sent at least this often, changed or not. @default 3000 */
  readonly refreshMs?: number;
  /** Documents per report, the busiest first. @default 1000 */
  readonly maxReportedDocs?: number;
}

export interface PresenceStatus {
  readonly region: string | undefined;
  /** Documents with a leading region, up to 100 of them (name order). */
  readonly documents: ReadonlyArray<{ readonly doc: DocName; readonly region: string }>;
  readonly placed: number;
}

export interface PresencePlacement {
  /** Placement's hook: `ranked` (rendezvous order) with the best node of `doc`'s region first. */
  order(doc: DocName, ranked: readonly NodeId[]): NodeId[];
  /** The region leading `doc`'s homes, if any. */
  regionFor(doc: DocName): string | undefined;
  /** Hub hook: `doc` was opened here, so it may have users here. */
  onLease(doc: DocName): void;
  /** Hub hook: `doc` changed here; a client's or an HTTP write counts its writer as active. */
  onWrite(doc: DocName, origin: Origin | undefined): void;
  /** A presence report from `from`. */
  onFrame(from: NodeId, frame: Uint8Array): void;
  onMemberUp(nodeId: NodeId): void;
  onMemberDown(nodeId: NodeId): void;
  /** Counts, reports and decides (the cluster's one-second tick). */
  tick(): void;
  status(): PresenceStatus;
}

interface Heard {
  readonly region: string;
  readonly users: ReadonlyMap<DocName, number>;
  readonly at: number;
}

/** HTTP writes count as one writer; connection ids are positive. */
const HTTP_WRITER = -1;

/** Writers counted per document at most (more do not change where it goes). */
const MAX_WRITERS_PER_DOC = 100;

const sameCounts = (a: ReadonlyMap<DocName, number>, b: ReadonlyMap<DocName, number>): boolean =>
  a.size === b.size && [...a].every(([doc, n]) => b.get(doc) === n);

export const createPresencePlacement = (options: PresencePlacementOptions): PresencePlacement => {
  const { selfId, logger } = options;
  const selfRegion = options.region;
  const decision: DecisionOptions = {
    dwellMs: options.dwellMs ?? 10_000,
    margin: options.margin ?? 0.25,
    forgetMs: options.forgetMs ?? 300_000,
  };
  const refreshMs = options.refreshMs ?? 3000;
  const maxReportedDocs = options.maxReportedDocs ?? 1000;
  /** Reports older than this are from a node that stopped sending them. */
  const staleMs = 3 * refreshMs + 1000;
  const writerActiveMs = options.writerActiveMs ?? 10_000;
  /** Open documents here (they may have users). */
  const watched = new Set<DocName>();
  /** Per document written here: writer (its connection id, or HTTP_WRITER) → time of its last write. */
  const writers = new Map<DocName, Map<number, number>>();
  const heard = new Map<string, Heard>();
  const regions = new Map<string, string>();
  const choices = new Map<DocName, RegionChoice>();
  let sent: ReadonlyMap<DocName, number> = new Map();
  let sentAt = -Infinity;
  const sentTo = new Set<string>();

  const regionOf = (id: string): string | undefined =>
    id === selfId ? selfRegion : regions.get(id);

  /** Writers of `doc` active at `now` (the ones past `writerActiveMs` are dropped). */
  const activeWriters = (doc: DocName, now: number): number => {
    const byWriter = writers.get(doc);
    if (!byWriter) return 0;
    for (const [writer, at] of byWriter) if (now - at > writerActiveMs) byWriter.delete(writer);
    if (byWriter.size === 0) writers.delete(doc);
    return byWriter.size;
  };

  const countLocal = (now: number): Map<DocName, number> => {
    const users = new Map<DocName, number>();
    for (const doc of new Set([...watched, ...writers.keys()])) {
      const present = options.usersOn(doc);
      if (present === undefined) watched.delete(doc);
      // A user with presence who also writes is one user, not two.
      const n = Math.max(present ?? 0, activeWriters(doc, now));
      if (n > 0) users.set(doc, n);
    }
    if (users.size <= maxReportedDocs) return users;
    return new Map([...users].sort((a, b) => b[1] - a[1]).slice(0, maxReportedDocs));
  };

  const report = (users: ReadonlyMap<DocName, number>, now: number): void => {
    const peers = options.peers();
    const fresh = peers.some((id) => !sentTo.has(id));
    if (!fresh && sameCounts(users, sent) && now - sentAt < refreshMs) return;
    const frame = encodePresenceReport({ region: selfRegion ?? '', users });
    sentTo.clear();
    for (const id of peers) if (options.send(id, frame)) sentTo.add(id);
    sent = users;
    sentAt = now;
  };

  /** Active users per document and region: this node's and every fresh report's. */
  const aggregate = (
    local: ReadonlyMap<DocName, number>,
    now: number,
  ): Map<DocName, Map<string, number>> => {
    const byDoc = new Map<DocName, Map<string, number>>();
    const add = (region: string | undefined, users: ReadonlyMap<DocName, number>): void => {
      if (!region) return;
      for (const [doc, n] of users) {
        let counts = byDoc.get(doc);
        if (!counts) byDoc.set(doc, (counts = new Map()));
        counts.set(region, (counts.get(region) ?? 0) + n);
      }
    };
    add(selfRegion, local);
    for (const [id, entry] of heard) {
      if (now - entry.at > staleMs) heard.delete(id);
      else add(entry.region, entry.users);
    }
    return byDoc;
  };

  const decide = (byDoc: ReadonlyMap<DocName, ReadonlyMap<string, number>>, now: number): void => {
    const none = new Map<string, number>();
    for (const doc of new Set([...choices.keys(), ...byDoc.keys()])) {
      const previous = choices.get(doc);
      const next = decideRegion(previous, byDoc.get(doc) ?? none, now, decision);
      if (next) choices.set(doc, next);
      else choices.delete(doc);
      if (previous?.region === next?.region) continue;
      logger.info(
        {
          doc,
          from: previous?.region,
          to: next?.region,
          users: Object.fromEntries(byDoc.get(doc) ?? none),
        },
        'presence placement: homes follow the users',
      );
      options.onMove?.(doc);
    }
  };

  return {
    order(doc, ranked) {
      const region = choices.get(doc)?.region;
      const at = region === undefined ? -1 : ranked.findIndex((id) => regionOf(id) === region);
      if (at <= 0) return [...ranked];
      return [ranked[at]!, ...ranked.slice(0, at), ...ranked.slice(at + 1)];
    },
    regionFor: (doc) => choices.get(doc)?.region,
    onLease: (doc) => void watched.add(doc),
    onWrite(doc, origin) {
      // Called on every change of every open document: no allocation for a known writer.
      if (!selfRegion) return;
      const writer =
        origin?.kind === 'client'
          ? origin.connId
          : origin?.kind === 'http'
            ? HTTP_WRITER
            : undefined;
      if (writer === undefined) return; // a replica's, function's or stored change is no user here
      let byWriter = writers.get(doc);
      if (!byWriter) {
        if (writers.size >= maxReportedDocs * 10) return;
        writers.set(doc, (byWriter = new Map()));
      }
      if (byWriter.size < MAX_WRITERS_PER_DOC || byWriter.has(writer))
        byWriter.set(writer, Date.now());
    },
    onFrame(from, frame) {
      try {
        const { region, users } = decodePresenceReport(frame);
        if (region) regions.set(from, region);
        else regions.delete(from);
        heard.set(from, { region, users, at: Date.now() });
      } catch (err) {
        logger.warn({ peer: from, reason: (err as Error).message }, 'presence report refused');
      }
    },
    onMemberUp: (id) => void sentTo.delete(id),
    onMemberDown(id) {
      heard.delete(id);
      sentTo.delete(id);
    },
    tick() {
      const now = Date.now();
      const local = countLocal(now);
      report(local, now);
      decide(aggregate(local, now), now);
    },
    status() {
      const placed = [...choices]
        .filter((entry): entry is [DocName, RegionChoice & { region: string }] => !!entry[1].region)
        .map(([doc, choice]) => ({ doc, region: choice.region }))
        .sort((a, b) => (a.doc < b.doc ? -1 : 1));
      return { region: selfRegion, documents: placed.slice(0, 100), placed: placed.length };
    },
  };
};
