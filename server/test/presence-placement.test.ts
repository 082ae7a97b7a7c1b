/**
 * `--placement presence` in process: the decision with its hysteresis
 * (presence-decision.ts), the report codec, and nodes that exchange reports
 * agreeing on which node leads a document's homes (presence-placement.ts).
 */
import { docName } from './helpers/doc-name.js';
import { roomOptions } from './helpers/room.js';
import { validateNodeId as nid } from '../src/node-id.js';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ProtocolError } from '@stateweave/client/protocol';
import { decideRegion, type RegionChoice } from '../src/cluster/presence-decision.js';
import { decodePresenceReport, encodePresenceReport } from '../src/cluster/presence-codec.js';
import { createPresencePlacement } from '../src/cluster/presence-placement.js';
import { createPlacement, rank } from '../src/cluster/placement.js';
import { checkPlacement } from '../src/cluster/cluster-config.js';
import * as Y from 'yjs';
import * as awarenessProtocol from 'y-protocols/awareness';
import { Room } from '../src/hub/room.js';
import { createMemoryStore } from '../src/storage/level-store.js';
import { nextConnectionId, type ConnectionId } from '../src/connection-id.js';
import { silentLogger } from './helpers/node.js';

const OPTIONS = { dwellMs: 1000, margin: 0.25, forgetMs: 5000 };
const counts = (entries: Record<string, number>): Map<string, number> =>
  new Map(Object.entries(entries));

/** Runs the decision once per `stepMs` over `steps` (counts by time), returning every choice. */
const run = (
  steps: Array<[number, Record<string, number>]>,
  start?: RegionChoice,
): Array<RegionChoice | undefined> => {
  const out: Array<RegionChoice | undefined> = [];
  let choice = start;
  for (const [at, users] of steps) {
    choice = decideRegion(choice, counts(users), at, OPTIONS);
    out.push(choice);
  }
  return out;
};

describe('presence decision (hysteresis)', () => {
  it('adopts the region with the users only after it has led for the dwell time', () => {
    const choices = run([
      [0, { ap: 2 }],
      [500, { ap: 2 }],
      [999, { ap: 2 }],
      [1000, { ap: 2 }],
    ]);
    assert.deepEqual(
      choices.map((c) => c?.region),
      [undefined, undefined, undefined, 'ap'],
    );
  });

  it('does not switch for a challenger that stops leading before the dwell time is over', () => {
    const start: RegionChoice = { region: 'eu', since: -10_000 };
    const choices = run(
      [
        [0, { eu: 1, ap: 3 }],
        [800, { eu: 1, ap: 3 }],
        [900, { eu: 3, ap: 3 }], // level: the challenge ends
        [1500, { eu: 1, ap: 3 }], // leads again: the clock starts again
        [2400, { eu: 1, ap: 3 }],
        [2500, { eu: 1, ap: 3 }],
      ],
      start,
    );
    assert.deepEqual(
      choices.map((c) => c?.region),
      ['eu', 'eu', 'eu', 'eu', 'eu', 'ap'],
    );
    assert.equal(choices[5]?.since, 2500);
  });

  it('needs a lead of one user and more than the margin', () => {
    const start: RegionChoice = { region: 'eu', since: -10_000 };
    // 5 against 4 is 25 %: not more than the margin, so no challenge at all.
    assert.deepEqual(
      run(
        [
          [0, { eu: 4, ap: 5 }],
          [5000, { eu: 4, ap: 5 }],
        ],
        start,
      ).map((c) => c?.region),
      ['eu', 'eu'],
    );
    assert.equal(run([[0, { eu: 4, ap: 5 }]], start)[0]?.challenger, undefined);
    // 6 against 4 is: after the dwell time.
    assert.deepEqual(
      run(
        [
          [0, { eu: 4, ap: 6 }],
          [1000, { eu: 4, ap: 6 }],
        ],
        start,
      ).map((c) => c?.region),
      ['eu', 'ap'],
    );
  });

  it('waits the dwell time after a switch before the next one (no flapping)', () => {
    const choices = run([
      [0, { ap: 1 }],
      [1000, { ap: 1 }], // → ap at 1000
      [1100, { eu: 2 }], // eu leads from 1100 …
      [2100, { eu: 2 }], // … for the dwell time, and 1100 ms after the switch
    ]);
    assert.deepEqual(
      choices.map((c) => c?.region),
      [undefined, 'ap', 'ap', 'eu'],
    );
    const early = decideRegion(
      { region: 'ap', since: 1000, challenger: { region: 'eu', since: 0 } },
      counts({ eu: 2 }),
      1500,
      OPTIONS,
    );
    assert.equal(early?.region, 'ap', 'only 500 ms since the last switch');
  });

  it('keeps the choice while nobody is active, then forgets it', () => {
    const start: RegionChoice = { region: 'ap', since: 0 };
    const choices = run(
      [
        [100, {}],
        [4000, { eu: 0 }],
        [5099, {}],
        [5100, {}],
      ],
      start,
    );
    assert.deepEqual(
      choices.map((c) => c?.region),
      ['ap', 'ap', 'ap', undefined],
    );
    // A user back before the end resets the idle clock.
    const back = run(
      [
        [100, {}],
        [3000, { ap: 1 }],
        [7000, {}],
        [11_000, {}],
      ],
      start,
    );
    assert.deepEqual(
      back.map((c) => c?.region),
      ['ap', 'ap', 'ap', 'ap'],
    );
  });

  it('breaks ties the same way on every node: the current region, else the first name', () => {
    assert.equal(
      run([
        [0, { us: 2, ap: 2 }],
        [1000, { us: 2, ap: 2 }],
      ])[1]?.region,
      'ap',
    );
    const start: RegionChoice = { region: 'us', since: -10_000 };
    assert.equal(
      run(
        [
          [0, { us: 2, ap: 2 }],
          [5000, { us: 2, ap: 2 }],
        ],
        start,
      )[1]?.region,
      'us',
    );
  });
});

describe('presence report codec', () => {
  it('round-trips a report and refuses trailing or truncated bytes', () => {
    const report = {
      region: 'ap',
      users: new Map([
        [docName('doc-a'), 3],
        [docName('b/c'), 1],
      ]),
    };
    const bytes = encodePresenceReport(report);
    assert.deepEqual(decodePresenceReport(bytes), report);
    assert.throws(() => decodePresenceReport(new Uint8Array([...bytes, 0])), ProtocolError);
    assert.throws(() => decodePresenceReport(bytes.subarray(0, bytes.length - 1)), ProtocolError);
    assert.throws(() => decodePresenceReport(new Uint8Array([8, 0])), ProtocolError);
  });
});

describe('presence placement across nodes', () => {
  const REGION: Record<string, string> = { eu1: 'eu', eu2: 'eu', ap1: 'ap', ap2: 'ap' };
  const ids = Object.keys(REGION).map(nid);

  /** Four nodes that hand each other's frames on at once; users per node and document. */
  const fourNodes = (writerActiveMs?: number) => {
    const users = new Map<string, Map<string, number>>(ids.map((id) => [id, new Map()]));
    const moved: string[] = [];
    const nodes = new Map(
      ids.map((id) => {
        const presence = createPresencePlacement({
          selfId: id,
          region: REGION[id],
          usersOn: (doc) => users.get(id)!.get(doc) ?? 0,
          send: (to, frame) => {
            nodes.get(to)!.presence.onFrame(id, frame);
            return true;
          },
          peers: () => ids.filter((other) => other !== id),
          logger: silentLogger(),
          onMove: (doc) => moved.push(`${id}:${doc}`),
          dwellMs: 0,
          ...(writerActiveMs !== undefined ? { writerActiveMs } : {}),
        });
        const placement = createPlacement({
          selfId: id,
          replicationFactor: 2,
          members: () => ids,
          order: presence.order,
        });
        return [id, { presence, placement }] as const;
      }),
    );
    const tick = (): void => {
      for (const { presence } of nodes.values()) presence.tick();
    };
    return { users, nodes, tick, moved };
  };

  it('puts the best node of the users’ region first on every node, the rest as hashed', () => {
    // A document whose two rendezvous homes are both in eu.
    const doc = Array.from({ length: 500 }, (_, i) => docName(`d${i}`)).find((d) =>
      rank(d, ids)
        .slice(0, 2)
        .every((id) => REGION[id] === 'eu'),
    )!;
    const { users, nodes, tick, moved } = fourNodes();
    for (const { presence } of nodes.values()) presence.onLease(doc);
    const hashed = rank(doc, ids);
    for (const { placement } of nodes.values())
      assert.deepEqual(placement.homesFor(doc), hashed.slice(0, 2));

    users.get('ap2')!.set(doc, 2);
    tick(); // reports go out, and the decision starts (its challenger leads from now)
    tick();
    const apFirst = hashed.find((id) => REGION[id] === 'ap')!;
    for (const [id, { placement, presence }] of nodes) {
      assert.equal(presence.regionFor(doc), 'ap', id);
      assert.deepEqual(placement.homesFor(doc), [apFirst, hashed[0]], id);
    }
    assert.equal(moved.length, 4, 'every node saw the move once');

    // eu users become the majority (3 against 2, more than 25 % ahead): back to eu.
    users.get('eu1')!.set(doc, 3);
    tick();
    tick();
    for (const { placement } of nodes.values())
      assert.deepEqual(placement.homesFor(doc), hashed.slice(0, 2));
    assert.equal(nodes.get(nid('ap1'))!.presence.status().placed, 1);
  });

  it('counts the writers of a document without presence where they write, each once', async () => {
    const doc = Array.from({ length: 500 }, (_, i) => docName(`w${i}`)).find((d) =>
      rank(d, ids)
        .slice(0, 2)
        .every((id) => REGION[id] === 'eu'),
    )!;
    const { users, nodes, tick } = fourNodes(200);
    const [eu1, ap1] = [nodes.get(nid('eu1'))!.presence, nodes.get(nid('ap1'))!.presence];
    const client = (connId: number) =>
      ({ kind: 'client', connId: connId as ConnectionId }) as const;
    // One user with presence in eu, who also writes: one user, not two.
    users.get('eu1')!.set(doc, 1);
    eu1.onLease(doc);
    eu1.onWrite(doc, client(1));
    tick();
    tick();
    for (const { presence } of nodes.values()) assert.equal(presence.regionFor(doc), 'eu');
    // Two sensors in ap write without presence (and a replica's or function's writes count nowhere).
    ap1.onWrite(doc, client(2));
    ap1.onWrite(doc, client(3));
    ap1.onWrite(doc, { kind: 'peer', nodeId: nid('eu1') });
    ap1.onWrite(doc, { kind: 'function', name: 'f' });
    tick();
    tick();
    for (const { presence } of nodes.values()) assert.equal(presence.regionFor(doc), 'ap');
    // Past writerActiveMs without a write, the sensors no longer count: eu's user leads again.
    await new Promise((resolve) => setTimeout(resolve, 250));
    eu1.onWrite(doc, { kind: 'http' });
    tick();
    tick();
    for (const { presence } of nodes.values()) assert.equal(presence.regionFor(doc), 'eu');
  });

  it('keeps the choice when the node with the users goes away, until it is forgotten', () => {
    const doc = docName('doc-x');
    const { users, nodes, tick } = fourNodes();
    nodes.get(nid('ap1'))!.presence.onLease(doc);
    users.get('ap1')!.set(doc, 1);
    tick();
    tick();
    assert.equal(nodes.get(nid('eu1'))!.presence.regionFor(doc), 'ap');
    nodes.get(nid('eu1'))!.presence.onMemberDown(nid('ap1'));
    // Its users no longer count on eu1; the choice stays until it is forgotten.
    assert.equal(nodes.get(nid('eu1'))!.presence.regionFor(doc), 'ap');
  });
});

describe('local presence count of a room', () => {
  it('counts its own clients only: not echoes of relayed states, nor a peer removing them', async (t) => {
    const store = await createMemoryStore();
    const room = new Room(docName('count'), roomOptions(store));
    await room.load();
    t.after(async () => {
      room.destroy();
      await store.close();
    });
    const client = (connId: ConnectionId) => ({ kind: 'client' as const, connId });
    const peer = { kind: 'peer' as const, nodeId: nid('n2') };
    const stateOf = (doc: Y.Doc, user: string): Uint8Array => {
      const awareness = new awarenessProtocol.Awareness(doc);
      awareness.setLocalStateField('user', user);
      const update = awarenessProtocol.encodeAwarenessUpdate(awareness, [doc.clientID]);
      awareness.destroy(); // its renewal timer
      return update;
    };
    const local = new Y.Doc();
    const here = nextConnectionId();
    room.subscribe({ connId: here, send: () => undefined });
    room.applyAwareness(stateOf(local, 'here'), client(here));
    assert.equal(room.localPresenceCount, 1);

    // Five users of other nodes, relayed by a peer, echoed by the local client in one message.
    const remote = Array.from({ length: 5 }, () => new Y.Doc());
    const relayed = remote.map((d, i) => stateOf(d, `there-${i}`));
    for (const update of relayed) room.applyAwareness(update, peer);
    const echo = awarenessProtocol.encodeAwarenessUpdate(
      room.awareness,
      remote.map((d) => d.clientID),
    );
    const { own, refused } = room.applyAwareness(echo, client(here));
    assert.deepEqual([own, refused], [0, undefined]);
    assert.equal(room.localPresenceCount, 1);

    // A peer relaying the removal of the local client's state changes nothing.
    const removal = new awarenessProtocol.Awareness(new Y.Doc());
    awarenessProtocol.applyAwarenessUpdate(removal, stateOf(local, 'here'), 'test');
    awarenessProtocol.removeAwarenessStates(removal, [local.clientID], 'test');
    room.applyAwareness(awarenessProtocol.encodeAwarenessUpdate(removal, [local.clientID]), peer);
    assert.equal(room.localPresenceCount, 1);
    assert.ok(room.awareness.getStates().has(local.clientID));
    removal.destroy();

    room.unsubscribe(here);
    assert.equal(room.localPresenceCount, 0);
    await room.flush();
  });
});

describe('placement settings', () => {
  it('needs a region for presence placement and a valid region name', () => {
    assert.throws(() => checkPlacement({ placement: 'presence' }), /needs --region/);
    assert.throws(() => checkPlacement({ region: 'e u' }), /region/);
    assert.doesNotThrow(() => checkPlacement({ placement: 'presence', region: 'eu-west_1' }));
    assert.doesNotThrow(() => checkPlacement({}));
  });
});
