/**
 * The contract every Backplane adapter must pass (the in-memory one and the
 * mesh too), and the part every LeasingBackplane adapter passes besides. Call
 * `backplaneContract(name, makeNodes)` (and `leasingBackplaneContract`) from a
 * test file; `makeNodes(ids)` returns one backplane per id on a fresh, shared
 * medium (not started), and `close` ends whatever the medium needs. Every wait
 * has a time limit.
 */
import { docName } from './helpers/doc-name.js';
import { afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Backplane, BackplaneEvents, LeasingBackplane } from '../src/cluster/backplane.js';
import { StateweaveError } from '../src/errors.js';
import { waitFor } from './helpers/wait.js';
import { validateNodeId as nid } from '../src/node-id.js';

export interface ContractMedium<B extends Backplane = Backplane> {
  readonly backplanes: B[];
  close(): Promise<void>;
}

interface Recorded {
  readonly up: string[];
  readonly down: string[];
  readonly direct: Array<{ from: string; bytes: number[] }>;
  readonly doc: Array<{ doc: string; from: string; bytes: number[] }>;
  readonly records: string[];
  resyncs: number;
}

const recorder = (): { events: BackplaneEvents; seen: Recorded } => {
  const seen: Recorded = { up: [], down: [], direct: [], doc: [], records: [], resyncs: 0 };
  return {
    seen,
    events: {
      memberUp: (id) => seen.up.push(id),
      memberDown: (id) => seen.down.push(id),
      direct: (from, frame) => seen.direct.push({ from, bytes: [...frame] }),
      docMessage: (doc, from, message) => seen.doc.push({ doc, from, bytes: [...message] }),
      recordChanged: (name) => seen.records.push(name),
      resync: () => seen.resyncs++,
    },
  };
};

/** Binary on purpose: zeros and high bytes must survive every adapter. */
const bytes = (...values: number[]): Uint8Array => Uint8Array.from(values);

interface Suite<B extends Backplane> {
  /** Starts every node and waits until each sees all of them. */
  startAll(ids: string[]): Promise<Recorded[]>;
  /** The backplanes of the medium `startAll` made. */
  nodes(): B[];
}

/** A describe block with a fresh medium per test, closed after it. */
const suite = <B extends Backplane>(
  title: string,
  makeNodes: (ids: string[]) => Promise<ContractMedium<B>>,
  tests: (s: Suite<B>) => void,
): void => {
  describe(title, () => {
    let medium: ContractMedium<B> | undefined;

    afterEach(async () => {
      for (const b of medium?.backplanes ?? []) await b.close();
      await medium?.close();
      medium = undefined;
    });

    /** Starts every node and waits until each sees all of them. */
    const startAll = async (ids: string[]): Promise<Recorded[]> => {
      medium = await makeNodes(ids);
      const seen: Recorded[] = [];
      for (const b of medium.backplanes) {
        const r = recorder();
        seen.push(r.seen);
        await b.start(r.events);
      }
      const all = [...ids].sort().join(',');
      // Members and live: the mesh lists its configured peers as members before their links
      // are up, and a record or publish sent meanwhile reaches only the linked ones.
      await waitFor(
        () =>
          medium!.backplanes.every(
            (b) =>
              [...b.members()].sort().join(',') === all && ids.every((id) => b.isLive(nid(id))),
          ),
        `every node to see ${all} live`,
        10_000,
      );
      return seen;
    };

    tests({ startAll, nodes: () => medium!.backplanes });
  });
};

export const backplaneContract = (
  name: string,
  makeNodes: (ids: string[]) => Promise<ContractMedium>,
): void =>
  suite(`Backplane contract: ${name}`, makeNodes, ({ startAll, nodes }) => {
    it('lists every live member and tells each node of the others', async () => {
      const seen = await startAll(['a', 'b', 'c']);
      const [a] = nodes() as [Backplane];
      assert.ok(a.isLive(nid('b')) && a.isLive(nid('c')) && a.isLive(nid('a')));
      assert.ok(!a.isLive(nid('z')));
      await waitFor(
        () => seen.every((s, i) => s.up.length >= 2 && !s.up.includes(['a', 'b', 'c'][i]!)),
        'memberUp for the two others on every node',
        10_000,
      );
    });

    it('delivers a directed message to its addressee only, bytes intact', async () => {
      const seen = await startAll(['a', 'b', 'c']);
      const [a] = nodes() as [Backplane];
      assert.equal(a.send(nid('b'), bytes(0, 255, 0, 7)), true);
      await waitFor(() => seen[1]!.direct.length === 1, 'b to receive it', 5000);
      assert.deepEqual(seen[1]!.direct[0], { from: 'a', bytes: [0, 255, 0, 7] });
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.equal(seen[2]!.direct.length, 0, 'c got nothing');
      assert.equal(seen[0]!.direct.length, 0, 'a got nothing back');
    });

    it('delivers a channel to its other subscribers, in order, not to the publisher', async () => {
      const seen = await startAll(['a', 'b', 'c']);
      const [a, b] = nodes() as [Backplane, Backplane];
      a.subscribe(docName('d1'));
      b.subscribe(docName('d1'));
      await new Promise((resolve) => setTimeout(resolve, 100));
      for (let i = 0; i < 20; i++) a.publish(docName('d1'), bytes(i, 0));
      await waitFor(() => seen[1]!.doc.length === 20, 'b to receive all 20', 5000);
      assert.deepEqual(
        seen[1]!.doc.map((m) => m.bytes[0]),
        Array.from({ length: 20 }, (_, i) => i),
      );
      assert.ok(seen[1]!.doc.every((m) => m.from === 'a' && m.doc === 'd1'));
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.equal(seen[0]!.doc.length, 0, 'the publisher hears nothing of its own');
      assert.equal(seen[2]!.doc.length, 0, 'a node not subscribed hears nothing');
    });

    it('catches a late subscriber up on what the channel retains', async () => {
      const seen = await startAll(['a', 'b']);
      const [a, b] = nodes() as [Backplane, Backplane];
      a.subscribe(docName('d2'));
      a.publish(docName('d2'), bytes(1));
      a.publish(docName('d2'), bytes(2));
      await new Promise((resolve) => setTimeout(resolve, 100));
      b.subscribe(docName('d2'));
      await waitFor(() => seen[1]!.doc.length === 2, 'b to catch up', 5000);
      b.unsubscribe(docName('d2'));
      a.publish(docName('d2'), bytes(3));
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.equal(seen[1]!.doc.length, 2, 'nothing while unsubscribed');
      b.subscribe(docName('d2'));
      await waitFor(() => seen[1]!.doc.length === 3, 'b to resume after what it read', 5000);
      assert.deepEqual(
        seen[1]!.doc.map((m) => m.bytes[0]),
        [1, 2, 3],
      );
    });

    it('keeps records: the last value written, and an event on the other members', async () => {
      const seen = await startAll(['a', 'b']);
      const [a, b] = nodes() as [Backplane, Backplane];
      assert.equal(await b.getRecord('r1'), undefined);
      await a.putRecord('r1', bytes(1, 0, 2));
      await a.putRecord('r1', bytes(3, 0, 4));
      // A record is a register: b must end with the last value and be told of it. Writes may
      // reach it coalesced (the mesh sends a link that comes up only the newest value, so two
      // writes made while a's side of the link was still coming up are one event).
      await waitFor(
        async () => seen[1]!.records.length > 0 && (await b.getRecord('r1'))?.[0] === 3,
        'b to hear of the last write',
        5000,
      );
      assert.ok(
        seen[1]!.records.every((name) => name === 'r1'),
        seen[1]!.records.join(','),
      );
      assert.deepEqual([...(await b.getRecord('r1'))!], [3, 0, 4]);
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.equal(seen[0]!.records.length, 0, 'the writer hears nothing of its own');
    });

    it('acknowledges a publish once the medium holds it', async () => {
      const seen = await startAll(['a', 'b']);
      const [a, b] = nodes() as [Backplane, Backplane];
      b.subscribe(docName('p1'));
      await new Promise((resolve) => setTimeout(resolve, 100));
      await a.publishAcked(docName('p1'), bytes(5, 0, 5));
      await waitFor(() => seen[1]!.doc.length === 1, 'b to receive it', 5000);
      assert.deepEqual(seen[1]!.doc[0], { doc: 'p1', from: 'a', bytes: [5, 0, 5] });
    });

    it('tells the others when a node leaves', async () => {
      const seen = await startAll(['a', 'b']);
      const [a, b] = nodes() as [Backplane, Backplane];
      await b.close();
      await waitFor(() => seen[0]!.down.includes('b'), 'a to see b leave', 10_000);
      assert.ok(!a.isLive(nid('b')));
      assert.equal(a.status().state, 'connected');
    });
  });

export const leasingBackplaneContract = (
  name: string,
  makeNodes: (ids: string[]) => Promise<ContractMedium<LeasingBackplane>>,
): void =>
  suite(`LeasingBackplane contract: ${name}`, makeNodes, ({ startAll, nodes }) => {
    it('grants a lease to one node at a time, every grant with a larger token', async () => {
      await startAll(['a', 'b']);
      const [a, b] = nodes() as [LeasingBackplane, LeasingBackplane];
      const first = await a.acquireLease(docName('l1'), 2000);
      assert.ok(first.granted);
      const refused = await b.acquireLease(docName('l1'), 2000);
      assert.ok(!refused.granted);
      assert.equal(refused.holder, 'a');
      assert.ok(refused.remainingMs > 0 && refused.remainingMs <= 2000, `${refused.remainingMs}`);
      const again = await a.acquireLease(docName('l1'), 2000);
      assert.ok(again.granted && again.token > first.token, 'a new grant has a new token');
      assert.equal(
        await a.renewLease(docName('l1'), first.token, 2000),
        false,
        'the old token is spent',
      );
      assert.equal(await a.renewLease(docName('l1'), again.token, 2000), true);
      await a.releaseLease(docName('l1'), again.token);
      const taken = await b.acquireLease(docName('l1'), 2000);
      assert.ok(taken.granted && taken.token > again.token, 'released: b gets the next token');
      assert.equal(await a.renewLease(docName('l1'), again.token, 2000), false);
    });

    it('lets a lease lapse unless renewed', async () => {
      await startAll(['a', 'b']);
      const [a, b] = nodes() as [LeasingBackplane, LeasingBackplane];
      const kept = await a.acquireLease(docName('l2'), 500);
      assert.ok(kept.granted);
      // Renewed every 100 ms for longer than its TTL; 400 ms of slack for a loaded machine
      // (with a 300 ms TTL a renewal 200 ms late failed a clean-clone run).
      for (let i = 0; i < 8; i++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        assert.equal(await a.renewLease(docName('l2'), kept.token, 500), true, `renewal ${i}`);
      }
      assert.equal(
        (await b.acquireLease(docName('l2'), 500)).granted,
        false,
        'renewed past its TTL',
      );
      await new Promise((resolve) => setTimeout(resolve, 750));
      const lapsed = await b.acquireLease(docName('l2'), 300);
      assert.ok(lapsed.granted && lapsed.token > kept.token, 'lapsed: b takes it');
      assert.equal(await a.renewLease(docName('l2'), kept.token, 300), false);
    });

    it('fences writes: a stale holder publishes and records nothing, the new one gets the backlog', async () => {
      const seen = await startAll(['a', 'b', 'c']);
      const [a, b, c] = nodes() as [LeasingBackplane, LeasingBackplane, LeasingBackplane];
      c.subscribe(docName('f1'));
      await new Promise((resolve) => setTimeout(resolve, 100));
      const old = await a.acquireLease(docName('f1'), 300);
      assert.ok(old.granted);
      await a.publishFenced(docName('f1'), old.token, bytes(1, 0), [
        { key: 'k1', value: bytes(9, 0) },
      ]);
      await a.publishFenced(docName('f1'), old.token, null, [{ key: 'k2', value: bytes(8) }]);
      assert.deepEqual([...(await b.getDocRecord(docName('f1'), 'k1'))!], [9, 0]);
      await new Promise((resolve) => setTimeout(resolve, 400));
      const fresh = await b.acquireLease(docName('f1'), 2000);
      assert.ok(fresh.granted && fresh.token > old.token);
      assert.deepEqual(
        fresh.backlog.map((m) => ({ from: m.from, bytes: [...m.message] })),
        [{ from: 'a', bytes: [1, 0] }],
        "the earlier holder's write is in the new holder's backlog",
      );
      await assert.rejects(
        a.publishFenced(docName('f1'), old.token, bytes(2, 0), [{ key: 'k3', value: bytes(7) }]),
        (err) => err instanceof StateweaveError && err.code === 'FENCED',
      );
      assert.equal(
        await b.getDocRecord(docName('f1'), 'k3'),
        undefined,
        'the stale record was not written',
      );
      await assert.rejects(
        b.publishFenced(docName('f1'), fresh.token, bytes(3, 0), [{ key: 'k1', value: bytes(6) }]),
        (err) => err instanceof StateweaveError && err.code === 'FENCED',
        'a record that exists is never overwritten',
      );
      await b.publishFenced(docName('f1'), fresh.token, bytes(4, 0), []);
      await waitFor(() => seen[2]!.doc.length === 2, 'c to receive the two accepted writes', 5000);
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.deepEqual(
        seen[2]!.doc.map((m) => [m.from, ...m.bytes]),
        [
          ['a', 1, 0],
          ['b', 4, 0],
        ],
        'only accepted writes reach the channel',
      );
      await b.releaseLease(docName('f1'), fresh.token);
      const whole = await b.acquireLease(docName('f1'), 2000, true);
      assert.ok(whole.granted);
      assert.deepEqual(
        whole.backlog.map((m) => [m.from, ...m.message]),
        [
          ['a', 1, 0],
          ['b', 4, 0],
        ],
        'from the start: everything retained, its own writes included',
      );
    });
  });
