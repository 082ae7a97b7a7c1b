/**
 * The in-process fuzz suites (frame decoder, the update path of a Room, awareness,
 * document names). They run in a worker thread behind a watchdog: a case that runs
 * longer than CASE_TIMEOUT_MS (a decoder looping on crafted input) is killed and
 * reported with its input. This module is also that worker's entry point.
 */
import { docName } from '../helpers/doc-name.js';
import assert from 'node:assert/strict';
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import fc from 'fast-check';
import * as Y from 'yjs';
import * as awarenessProtocol from 'y-protocols/awareness';
import * as encoding from 'lib0/encoding';
import { pino } from 'pino';
import {
  decodeAwarenessUpdate,
  decodeClientMessage,
  decodeServerExtension,
  encodeAwareness,
  encodeError,
  encodeHello,
  encodeInvoke,
  encodeQueryAwareness,
  encodeSaved,
  encodeSyncStep1,
  encodeSyncStep2,
  encodeToken,
  encodeUpdate,
  ProtocolError,
  type ClientMessage,
} from '@stateweave/client/protocol';
import { MAX_DOC_NAME_LENGTH, validateDocName } from '../../src/doc-name.js';
import { StateweaveError } from '../../src/errors.js';
import { Room } from '../../src/hub/room.js';
import { createMetrics } from '../../src/metrics.js';
import type { Origin } from '../../src/origin.js';
import { createMemoryStore } from '../../src/storage/level-store.js';
import { docNameFromUrl } from '../../src/transport/ws-endpoint.js';
import {
  caseClock,
  docView,
  fuzzSeed,
  hex,
  mutate,
  mutationsArb,
  runInWorker,
  toSuiteResult,
  type Mutation,
  type SuiteResult,
  type WorkerJob,
} from '../helpers/fuzz.js';
import {
  CLIENT_IDS,
  type Edit,
  type Json,
  type Played,
  client,
  editArb,
  jsonArb,
  playScript,
  scriptArb,
} from './edits.js';
import { nextConnectionId } from '../../src/connection-id.js';

export const CASE_TIMEOUT_MS = 2000;

// ================================================================ a. frame decoder

/** Real payloads to wrap in frames and mutate, from a fixed editing session. */
export const samplePayloads = () => {
  const edits = fc.sample(fc.array(editArb, { minLength: 20, maxLength: 20 }), {
    seed: 7,
    numRuns: 1,
  })[0]!;
  const played = playScript(edits);
  const updates = [
    ...played.updates,
    Y.encodeStateAsUpdate(played.docs[0]!),
    Y.mergeUpdates(played.updates.slice(0, 5)),
  ];
  const stateVectors = played.docs.map((doc) => Y.encodeStateVector(doc));
  const awareness = new awarenessProtocol.Awareness(played.docs[1]!);
  awareness.setLocalState({ user: { name: 'ana', color: '#f00' }, cursor: { anchor: 3, head: 5 } });
  const awarenessUpdates = [
    awarenessProtocol.encodeAwarenessUpdate(awareness, [awareness.clientID]),
  ];
  awareness.setLocalState(null);
  awarenessUpdates.push(awarenessProtocol.encodeAwarenessUpdate(awareness, [awareness.clientID]));
  awareness.destroy();
  played.destroy();
  return { updates, stateVectors, awarenessUpdates };
};

export const validFrameArb = (
  payloads: ReturnType<typeof samplePayloads>,
): fc.Arbitrary<Uint8Array> =>
  fc.oneof(
    fc.constantFrom(...payloads.updates).map(encodeUpdate),
    fc.constantFrom(...payloads.updates).map(encodeSyncStep2),
    fc.constantFrom(...payloads.stateVectors).map(encodeSyncStep1),
    fc.constantFrom(...payloads.awarenessUpdates).map(encodeAwareness),
    fc.constant(encodeQueryAwareness()),
    fc.nat().map((version) => encodeHello(version)),
    fc.string({ maxLength: 40 }).map(encodeToken),
    // The node's own extension messages, which a client must not send.
    fc.nat().map(encodeSaved),
    fc.constant(encodeError('INVALID_FRAME', 'x')),
  );

export const varint = (value: number): Uint8Array => {
  const e = encoding.createEncoder();
  encoding.writeVarUint(e, value);
  return encoding.toUint8Array(e);
};
export const concat = (...parts: Uint8Array[]): Uint8Array =>
  Uint8Array.from(parts.flatMap((part) => [...part]));

export const frameArb = (payloads: ReturnType<typeof samplePayloads>): fc.Arbitrary<Uint8Array> => {
  const typeArb = fc.constantFrom(
    0,
    1,
    2,
    3,
    4,
    99,
    100,
    101,
    102,
    103,
    127,
    128,
    2 ** 31,
    2 ** 53 - 1,
  );
  const lengthArb = fc.oneof(
    fc.nat({ max: 64 }),
    fc.constantFrom(2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1),
  );
  return fc.oneof(
    { arbitrary: fc.uint8Array({ maxLength: 48 }), weight: 3 },
    { arbitrary: fc.uint8Array({ minLength: 49, maxLength: 4096 }), weight: 1 },
    {
      // A plausible header (type, sub-type, length) over random bytes.
      arbitrary: fc
        .tuple(typeArb, fc.nat({ max: 4 }), lengthArb, fc.uint8Array({ maxLength: 64 }))
        .map(([type, sub, length, tail]) =>
          concat(varint(type), varint(sub), varint(length), tail),
        ),
      weight: 3,
    },
    {
      arbitrary: fc
        .tuple(validFrameArb(payloads), mutationsArb())
        .map(([frame, mutations]) => mutate(frame, mutations)),
      weight: 8,
    },
    { arbitrary: validFrameArb(payloads), weight: 2 },
  );
};

/** The bytes `message` carries, if any (they must lie inside the frame). */
export const bytesOf = (message: ClientMessage): Uint8Array | undefined =>
  message.type === 'sync-step-1'
    ? message.stateVector
    : 'update' in message
      ? message.update
      : undefined;

export const reencode = (message: ClientMessage): Uint8Array => {
  switch (message.type) {
    case 'sync-step-1':
      return encodeSyncStep1(message.stateVector);
    case 'sync-step-2':
      return encodeSyncStep2(message.update);
    case 'update':
      return encodeUpdate(message.update);
    case 'awareness':
      return encodeAwareness(message.update);
    case 'query-awareness':
      return encodeQueryAwareness();
    case 'hello':
      return encodeHello(message.version);
    case 'token':
      return encodeToken(message.token);
    case 'invoke':
      return encodeInvoke(message);
  }
};

export const normal = (message: ClientMessage): unknown => {
  const bytes = bytesOf(message);
  return bytes
    ? { ...message, [message.type === 'sync-step-1' ? 'stateVector' : 'update']: hex(bytes) }
    : message;
};

export interface FrameCase {
  readonly frame: Uint8Array;
  /** Where the frame sits inside a larger buffer (ws hands out such views). */
  readonly before: number;
  readonly after: number;
}

export const frameSuite = async (job: WorkerJob): Promise<SuiteResult> => {
  const clock = caseClock(job.shared);
  const payloads = samplePayloads();
  const stats: Record<string, number> = {};
  const count = (key: string): void => void (stats[key] = (stats[key] ?? 0) + 1);
  const caseArb = fc.record({
    frame: frameArb(payloads),
    before: fc.nat({ max: 16 }),
    after: fc.nat({ max: 16 }),
  });
  const started = Date.now();
  const property = fc.property(caseArb, ({ frame, before, after }: FrameCase) => {
    clock.begin(JSON.stringify({ frame: hex(frame), before, after }));
    try {
      // Canary bytes around the frame: a decoder reading past its end would see 0xee.
      const backing = new Uint8Array(before + frame.length + after).fill(0xee);
      backing.set(frame, before);
      const view = backing.subarray(before, before + frame.length);
      let message: ClientMessage | undefined;
      try {
        message = decodeClientMessage(view);
      } catch (err) {
        if (!(err instanceof ProtocolError))
          throw new Error(`decodeClientMessage threw ${String(err)}, not a ProtocolError`);
        count('refused');
      }
      if (message !== undefined) {
        count(message.type);
        const bytes = bytesOf(message);
        if (bytes) {
          assert.equal(bytes.buffer, backing.buffer, 'payload is a view of the frame');
          assert.ok(
            bytes.byteOffset >= view.byteOffset &&
              bytes.byteOffset + bytes.byteLength <= view.byteOffset + view.byteLength,
            'payload lies inside the frame',
          );
        }
        // Decoding is a function of the message: re-encoding it decodes to the same.
        assert.deepEqual(normal(decodeClientMessage(reencode(message))), normal(message));
        if (message.type === 'awareness') {
          try {
            decodeAwarenessUpdate(message.update);
            count('awareness-decoded');
          } catch (err) {
            if (!(err instanceof ProtocolError))
              throw new Error(`decodeAwarenessUpdate threw ${String(err)}, not a ProtocolError`);
          }
        }
      }
      // The SDK decodes the node's frames with the same care.
      try {
        decodeServerExtension(view);
      } catch (err) {
        if (!(err instanceof ProtocolError))
          throw new Error(`decodeServerExtension threw ${String(err)}, not a ProtocolError`);
      }
    } finally {
      clock.end();
    }
  });
  const details = fc.check(property, {
    seed: job.seed,
    numRuns: job.numRuns,
    interruptAfterTimeLimit: 30_000,
  });
  return toSuiteResult(
    'frame decoder',
    details as fc.RunDetails<[unknown]>,
    started,
    clock.maxCaseMs,
    stats,
    (input) => {
      const c = input as FrameCase;
      return `frame ${hex(c.frame)} (at offset ${c.before} of a ${c.before + c.frame.length + c.after}-byte buffer)`;
    },
  );
};

// ================================================================ b. the update path

export const ORIGIN: Origin = Object.freeze({ kind: 'client', connId: nextConnectionId() });
export const ACCEPTED_REFUSALS = new Set(['INVALID_UPDATE', 'DOC_TOO_LARGE']);

export type TargetKind = 'one' | 'merged' | 'full' | 'diff';

export interface UpdateCase {
  readonly edits: readonly Edit[];
  /** How many of the script's updates the room receives first, unmutated. */
  readonly base: number;
  readonly target: { readonly kind: TargetKind; readonly pick: number };
  readonly mutations: readonly Mutation[];
  readonly maxDocBytes: number;
}

export const updateCaseArb: fc.Arbitrary<UpdateCase> = fc.record({
  edits: scriptArb,
  base: fc.nat(),
  target: fc.record({
    kind: fc.constantFrom<TargetKind>('one', 'merged', 'full', 'diff'),
    pick: fc.nat(),
  }),
  mutations: fc.oneof(
    { arbitrary: fc.constant([]), weight: 1 },
    { arbitrary: mutationsArb(), weight: 7 },
  ),
  maxDocBytes: fc.oneof(
    { arbitrary: fc.constant(1 << 20), weight: 5 },
    { arbitrary: fc.integer({ min: 16, max: 4096 }), weight: 1 },
  ),
});

/** The base updates and the (mutated) update of a case. */
export const caseInputs = (c: UpdateCase, played: Played, roomDoc?: Y.Doc) => {
  const { updates, docs } = played;
  const base = updates.slice(0, c.base % (updates.length + 1));
  const rest = updates.slice(base.length);
  const doc = docs[c.target.pick % docs.length]!;
  let target: Uint8Array;
  switch (c.target.kind) {
    case 'one':
      if (updates.length === 0)
        target = Y.encodeStateAsUpdate(doc); // the script changed nothing
      else
        target =
          rest.length > 0
            ? rest[c.target.pick % rest.length]!
            : updates[c.target.pick % updates.length]!;
      break;
    case 'merged':
      target = Y.mergeUpdates([...(rest.length > 0 ? rest : updates)]);
      break;
    case 'full':
      target = Y.encodeStateAsUpdate(doc);
      break;
    case 'diff': {
      // What a client sends as sync step 2 against the room's state vector.
      const sv = roomDoc ? Y.encodeStateVector(roomDoc) : Y.encodeStateVector(new Y.Doc());
      target = Y.encodeStateAsUpdate(doc, sv);
      break;
    }
  }
  return { base, target, mutated: c.mutations.length > 0 ? mutate(target, c.mutations) : target };
};

export const freshRoomOptions = async () => ({
  store: await createMemoryStore(),
  logger: pino({ level: 'silent' }),
  metrics: createMetrics({ collectDefault: false }),
  maxConnectionsPerDoc: 10,
  // Small, so that compaction of fuzzed state runs too.
  compactAfterUpdates: 3,
});

export const PROBE_CLIENT = 424_242;

/**
 * One case through a Room. `strict`: every refusal is a StateweaveError with an
 * expected code and leaves no trace (state, state vector, broadcast, storage).
 * Either way the room must stay usable: a later update applies, a fresh client
 * syncs to the same state, and the store holds that state.
 */
export const updateSuite =
  (strict: boolean) =>
  async (job: WorkerJob): Promise<SuiteResult> => {
    const clock = caseClock(job.shared);
    const options = await freshRoomOptions();
    const stats: Record<string, number> = {};
    const count = (key: string): void => void (stats[key] = (stats[key] ?? 0) + 1);
    let roomCounter = 0;
    const started = Date.now();

    const property = fc.asyncProperty(updateCaseArb, async (c) => {
      clock.begin(JSON.stringify(c, (_k, v: unknown) => (v instanceof Uint8Array ? hex(v) : v)));
      const played = playScript(c.edits);
      const room = new Room(docName(`case/${++roomCounter}`), {
        ...options,
        maxDocBytes: c.maxDocBytes,
      });
      const reference = new Y.Doc();
      try {
        await room.load();
        const broadcast: Uint8Array[] = [];
        room.subscribe({ connId: nextConnectionId(), send: (frame) => broadcast.push(frame) });

        /** The room's document as bytes; that it can be encoded at all is the first check. */
        const bytesOfRoom = (when: string) => {
          try {
            return {
              state: hex(Y.encodeStateAsUpdate(room.doc)),
              sv: hex(Y.encodeStateVector(room.doc)),
            };
          } catch (err) {
            throw new Error(
              `${when}, the room's document can no longer be encoded: ${String(err)}`,
              { cause: err },
            );
          }
        };
        let lastError: unknown;
        let previous = 'the start';
        const apply = async (update: Uint8Array, what: string): Promise<'applied' | 'refused'> => {
          lastError = undefined;
          const before = bytesOfRoom(`after ${previous}`);
          previous = `the ${what}`;
          const framesBefore = broadcast.length;
          const storedBefore = room.storedBytes;
          // Refused at once by the checks, or (Yjs itself threw, at the end of the turn) as a rejection.
          try {
            await room.applyUpdate(update, ORIGIN);
          } catch (err) {
            lastError = err;
            const code =
              err instanceof StateweaveError
                ? err.code
                : `${(err as Error)?.name}: ${(err as Error)?.message}`;
            count(`${what} refused ${code}`);
            if (strict) {
              if (!(err instanceof StateweaveError) || !ACCEPTED_REFUSALS.has(err.code)) {
                throw new Error(
                  `applyUpdate(${what}) threw ${code}, not a StateweaveError INVALID_UPDATE or DOC_TOO_LARGE`,
                  { cause: err },
                );
              }
              assert.deepEqual(
                bytesOfRoom(`after a refused ${what}`),
                before,
                `a refused ${what} left the document byte-identical`,
              );
              assert.equal(broadcast.length, framesBefore, `a refused ${what} was not broadcast`);
              assert.equal(room.storedBytes, storedBefore, `a refused ${what} was not stored`);
            }
            return 'refused';
          }
          count(`${what} applied`);
          if (strict) {
            // Applied exactly as Yjs applies it to a plain document.
            try {
              Y.applyUpdate(reference, update);
            } catch (err) {
              throw new Error(
                `the room applied a ${what} that a fresh Y.Doc refuses: ${String(err)}`,
                { cause: err },
              );
            }
            assert.deepEqual(
              docView(room.doc),
              docView(reference),
              `the room holds what a Y.Doc holds after the same ${what}`,
            );
          }
          return 'applied';
        };
        /** A valid update applies, unless the document would outgrow maxDocBytes. */
        const applyValid = async (update: Uint8Array, what: string): Promise<boolean> => {
          if ((await apply(update, what)) === 'applied') return true;
          assert.ok(
            lastError instanceof StateweaveError &&
              lastError.code === 'DOC_TOO_LARGE' &&
              room.storedBytes + update.byteLength > c.maxDocBytes,
            `a valid ${what} was refused with ${String(lastError)}`,
          );
          return false;
        };

        const { base } = caseInputs(c, played);
        for (const update of base) await applyValid(update, 'base update');
        const { mutated } = caseInputs(c, played, room.doc);
        clock.describe(
          JSON.stringify({ base: base.map(hex), update: hex(mutated), maxDocBytes: c.maxDocBytes }),
        );
        await apply(mutated, c.mutations.length > 0 ? 'mutated update' : 'valid update');

        // A later valid update still applies (unless the document is full).
        const probe = new Y.Doc();
        probe.clientID = PROBE_CLIENT;
        probe.getText('probe').insert(0, 'after');
        if (await applyValid(Y.encodeStateAsUpdate(probe), 'probe update')) {
          assert.ok(
            room.doc.getText('probe').toString().includes('after'),
            'the probe update is visible',
          );
        }
        probe.destroy();

        // A fresh client syncs (step 2 from the room, then its own step 2 back).
        bytesOfRoom(`after ${previous}`);
        const fresh = new Y.Doc();
        try {
          Y.applyUpdate(fresh, Y.encodeStateAsUpdate(room.doc, Y.encodeStateVector(fresh)));
        } catch (err) {
          throw new Error(`a fresh client cannot apply the room's sync step 2: ${String(err)}`, {
            cause: err,
          });
        }
        assert.deepEqual(
          docView(fresh),
          docView(room.doc),
          'a fresh client holds what the room holds',
        );
        await applyValid(
          Y.encodeStateAsUpdate(fresh, Y.encodeStateVector(room.doc)),
          "fresh client's sync step 2",
        );
        fresh.destroy();

        // The store holds the same document (a restart would see it).
        assert.equal(await room.flush(), true, 'every accepted change is stored');
        await room.compact();
        const replay = new Y.Doc();
        try {
          for (const update of (await options.store.load(room.name)).updates)
            Y.applyUpdate(replay, update);
        } catch (err) {
          throw new Error(`the stored state cannot be replayed: ${String(err)}`, { cause: err });
        }
        assert.deepEqual(docView(replay), docView(room.doc), 'the store holds what the room holds');
        replay.destroy();
      } finally {
        room.destroy();
        reference.destroy();
        played.destroy();
        clock.end();
      }
    });
    const details = await fc.check(property, {
      seed: job.seed,
      numRuns: job.numRuns,
      interruptAfterTimeLimit: 30_000,
    });
    return toSuiteResult(
      strict ? 'update path (strict)' : 'update path (usable)',
      details as fc.RunDetails<[unknown]>,
      started,
      clock.maxCaseMs,
      stats,
      (input) => {
        const c = input as UpdateCase;
        const played = playScript(c.edits);
        const { base, target, mutated } = caseInputs(c, played);
        played.destroy();
        return (
          `${JSON.stringify(c, (_k, v: unknown) => (v instanceof Uint8Array ? hex(v) : v))}\n  base updates: ${JSON.stringify(base.map(hex))}\n  target: ${hex(target)}\n` +
          `  mutated (sent to the room; for 'diff' targets computed against the room's state): ${hex(mutated)}`
        );
      },
    );
  };

// ---------------------------------------------------------------- awareness

export interface Presence {
  readonly client: number;
  readonly state: Json | null;
}

export interface AwarenessCase {
  readonly base: readonly Presence[];
  readonly target: readonly Presence[];
  readonly mutations: readonly Mutation[];
}

export const presenceArb: fc.Arbitrary<Presence> = fc.record({
  client,
  state: fc.oneof({ arbitrary: jsonArb, weight: 4 }, { arbitrary: fc.constant(null), weight: 1 }),
});
export const awarenessCaseArb: fc.Arbitrary<AwarenessCase> = fc.record({
  base: fc.array(presenceArb, { maxLength: 4 }),
  target: fc.array(presenceArb, { minLength: 1, maxLength: 3 }),
  mutations: fc.oneof(
    { arbitrary: fc.constant([]), weight: 1 },
    { arbitrary: mutationsArb(), weight: 7 },
  ),
});

/** Malformed, or speaking for a client id another connection (or the node) owns. */
export const AWARENESS_REFUSALS = new Set(['INVALID_FRAME', 'FORBIDDEN']);

export const presenceView = (awareness: awarenessProtocol.Awareness) =>
  JSON.stringify({
    states: [...awareness.getStates()].sort(([a], [b]) => a - b),
    clocks: [...awareness.meta].map(([id, meta]) => [id, meta.clock]).sort(([a], [b]) => a! - b!),
  });

export const awarenessSuite = async (job: WorkerJob): Promise<SuiteResult> => {
  const clock = caseClock(job.shared);
  const options = await freshRoomOptions();
  const stats: Record<string, number> = {};
  const count = (key: string): void => void (stats[key] = (stats[key] ?? 0) + 1);
  let roomCounter = 0;
  const started = Date.now();

  const property = fc.asyncProperty(awarenessCaseArb, async (c) => {
    clock.begin(JSON.stringify(c, (_k, v: unknown) => (v instanceof Uint8Array ? hex(v) : v)));
    const docs = CLIENT_IDS.map((id) => {
      const doc = new Y.Doc();
      doc.clientID = id;
      return doc;
    });
    const awarenesses = docs.map((doc) => new awarenessProtocol.Awareness(doc));
    const room = new Room(docName(`presence/${++roomCounter}`), {
      ...options,
      maxDocBytes: 1 << 20,
    });
    const fresh = new awarenessProtocol.Awareness(new Y.Doc());
    try {
      await room.load();
      const broadcast: Uint8Array[] = [];
      room.subscribe({ connId: nextConnectionId(), send: (frame) => broadcast.push(frame) });
      /** One update carrying these clients' new states, as a relaying client would send. */
      const encode = (presences: readonly Presence[]): Uint8Array => {
        for (const p of presences)
          awarenesses[p.client]!.setLocalState(p.state as Record<string, unknown> | null);
        const ids = [...new Set(presences.map((p) => p.client))];
        const e = encoding.createEncoder();
        encoding.writeVarUint(e, ids.length);
        for (const i of ids) {
          const awareness = awarenesses[i]!;
          encoding.writeVarUint(e, awareness.clientID);
          encoding.writeVarUint(e, awareness.meta.get(awareness.clientID)!.clock);
          encoding.writeVarString(e, JSON.stringify(awareness.getLocalState()));
        }
        return encoding.toUint8Array(e);
      };
      /** Applies; true if applied, false if refused without a trace (anything else fails). */
      const apply = (update: Uint8Array, what: string): boolean => {
        const before = presenceView(room.awareness);
        const framesBefore = broadcast.length;
        try {
          room.applyAwareness(update, ORIGIN);
          count(`${what} applied`);
          return true;
        } catch (err) {
          const code =
            err instanceof StateweaveError
              ? err.code
              : `${(err as Error)?.name}: ${(err as Error)?.message}`;
          count(`${what} refused ${code}`);
          if (!(err instanceof StateweaveError) || !AWARENESS_REFUSALS.has(err.code)) {
            throw new Error(
              `applyAwareness(${what}) threw ${code}, not a StateweaveError INVALID_FRAME or FORBIDDEN`,
              { cause: err },
            );
          }
          assert.equal(
            presenceView(room.awareness),
            before,
            `a refused ${what} left presence unchanged`,
          );
          assert.equal(broadcast.length, framesBefore, `a refused ${what} was not broadcast`);
          return false;
        }
      };
      for (const presence of c.base)
        assert.ok(apply(encode([presence]), 'base awareness update'), 'a valid update applies');
      const target = encode(c.target);
      const mutated = c.mutations.length > 0 ? mutate(target, c.mutations) : target;
      clock.describe(JSON.stringify({ ...c, target: hex(target), mutated: hex(mutated) }));
      const applied = apply(
        mutated,
        c.mutations.length > 0 ? 'mutated awareness update' : 'valid awareness update',
      );
      if (c.mutations.length === 0) assert.ok(applied, 'a valid update applies');

      // Presence stays serviceable: a newcomer gets every state and applies it.
      const all = room.encodeAwarenessStates();
      if (all) {
        const message = decodeClientMessage(all);
        assert.equal(message.type, 'awareness');
        awarenessProtocol.applyAwarenessUpdate(
          fresh,
          (message as { update: Uint8Array }).update,
          'node',
        );
        assert.deepEqual(
          JSON.stringify(
            [...fresh.getStates()]
              .filter(([id]) => id !== fresh.clientID)
              .sort(([a], [b]) => a - b),
          ),
          JSON.stringify([...room.awareness.getStates()].sort(([a], [b]) => a - b)),
          'a newcomer sees the same presence',
        );
      }
      // And a later valid update from a new client applies.
      let probeId = PROBE_CLIENT;
      while (room.awareness.meta.has(probeId)) probeId++;
      const e = encoding.createEncoder();
      encoding.writeVarUint(e, 1);
      encoding.writeVarUint(e, probeId);
      encoding.writeVarUint(e, 1);
      encoding.writeVarString(e, JSON.stringify({ user: 'probe' }));
      assert.ok(
        apply(encoding.toUint8Array(e), 'probe awareness update'),
        'a valid update applies',
      );
      assert.deepEqual(
        room.awareness.getStates().get(probeId),
        { user: 'probe' },
        'the probe is present',
      );
    } finally {
      fresh.doc.destroy();
      fresh.destroy();
      for (const awareness of awarenesses) awareness.destroy();
      for (const doc of docs) doc.destroy();
      room.destroy();
      clock.end();
    }
  });
  const details = await fc.check(property, {
    seed: job.seed,
    numRuns: job.numRuns,
    interruptAfterTimeLimit: 30_000,
  });
  return toSuiteResult(
    'awareness path',
    details as fc.RunDetails<[unknown]>,
    started,
    clock.maxCaseMs,
    stats,
    (input) => JSON.stringify(input, (_k, v: unknown) => (v instanceof Uint8Array ? hex(v) : v)),
  );
};

// ================================================================ e. document names

export const NAME_CHARS = 'aZ09._~:@=+-/'.split('');
export const nameArb: fc.Arbitrary<string> = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 300 }),
  fc.string({ unit: 'binary-ascii', maxLength: 40 }),
  fc.string({
    unit: fc.constantFrom(
      ...NAME_CHARS,
      '.',
      '..',
      '/',
      '\\',
      '\0',
      ' ',
      '\t',
      '\n',
      '\u00a0',
      '\u2028',
      '\ufeff',
      'é',
      '%',
      '?',
      '#',
    ),
    maxLength: 40,
  }),
  // Around the length limit, from characters that are otherwise fine.
  fc.string({ unit: fc.constantFrom('a', 'b', '-', '/', '.'), minLength: 250, maxLength: 260 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
);
export const urlArb: fc.Arbitrary<string> = fc.oneof(
  nameArb.map((name) => `/${name}`),
  fc
    .array(
      fc.oneof(
        fc.string({ unit: fc.constantFrom(...NAME_CHARS), maxLength: 8 }),
        fc.constantFrom(
          '%',
          '%2',
          '%zz',
          '%00',
          '%2e',
          '%2E%2e',
          '%2f',
          '%5c',
          '%20',
          '%C3%A9',
          '%e0%a4%a',
          '%ff',
          '%25',
          '?',
          '#',
          '//',
          '..',
        ),
      ),
      { maxLength: 8 },
    )
    .map((parts) => `/${parts.join('')}`),
  fc.string({ unit: 'binary-ascii', maxLength: 40 }),
);

export const ALLOWED = /^[A-Za-z0-9._~/:@=+-]*$/;

export const nameSuite = async (job: WorkerJob): Promise<SuiteResult> => {
  const clock = caseClock(job.shared);
  const stats: Record<string, number> = {};
  const count = (key: string): void => void (stats[key] = (stats[key] ?? 0) + 1);
  const started = Date.now();
  const checkName = (name: string): boolean => {
    let accepted: string;
    try {
      accepted = validateDocName(name);
    } catch (err) {
      if (!(err instanceof StateweaveError) || err.code !== 'INVALID_DOC_NAME')
        throw new Error(`validateDocName threw ${String(err)}`);
      assert.ok(err.message.length <= 200, 'the refusal does not echo a long name');
      count('refused');
      return false;
    }
    count('accepted');
    assert.equal(accepted, name, 'returns the name unchanged');
    assert.ok(name.length >= 1 && name.length <= MAX_DOC_NAME_LENGTH, `length ${name.length}`);
    assert.ok(
      !name.includes('\0') && !name.includes('\\') && !/\s/u.test(name),
      'no NUL, backslash or whitespace',
    );
    assert.ok(ALLOWED.test(name), 'only [A-Za-z0-9._~/:@=+-]');
    for (const segment of name.split('/'))
      assert.ok(
        segment !== '' && segment !== '.' && segment !== '..',
        `segment ${JSON.stringify(segment)}`,
      );
    // An accepted name is reachable by URL, percent-encoded or not, and only as itself.
    assert.equal(docNameFromUrl(`/${name}`), name);
    assert.equal(docNameFromUrl(`/${name.split('/').map(encodeURIComponent).join('/')}?x=1`), name);
    return true;
  };
  const property = fc.property(
    fc.oneof(
      nameArb.map((name) => ({ name })),
      urlArb.map((url) => ({ url })),
    ),
    (input) => {
      clock.begin(JSON.stringify(input));
      try {
        if ('name' in input) return void checkName(input.name);
        try {
          const name = docNameFromUrl(input.url);
          assert.ok(checkName(name), 'a name taken from a URL is a valid name');
          count('url accepted');
        } catch (err) {
          if (!(err instanceof StateweaveError) || err.code !== 'INVALID_DOC_NAME')
            throw new Error(`docNameFromUrl threw ${String(err)}`);
          count('url refused');
        }
      } finally {
        clock.end();
      }
    },
  );
  const details = fc.check(property, {
    seed: job.seed,
    numRuns: job.numRuns,
    interruptAfterTimeLimit: 30_000,
  });
  return toSuiteResult(
    'document names',
    details as fc.RunDetails<[unknown]>,
    started,
    clock.maxCaseMs,
    stats,
    (input) => JSON.stringify(input),
  );
};

export const SUITES: Record<string, (job: WorkerJob) => Promise<SuiteResult>> = {
  frames: frameSuite,
  'updates-strict': updateSuite(true),
  'updates-usable': updateSuite(false),
  awareness: awarenessSuite,
  names: nameSuite,
};

// ================================================================ the worker entry

if (!isMainThread && (workerData as Partial<WorkerJob> | null)?.fuzzSuite) {
  const job = workerData as WorkerJob;
  const suite = SUITES[job.fuzzSuite];
  if (!suite) throw new Error(`unknown fuzz suite ${job.fuzzSuite}`);
  parentPort!.postMessage(await suite(job));
}

/** Runs a suite in a watched worker and fails with its report. */
export const runSuite = async (
  t: { diagnostic(message: string): void },
  fuzzSuite: string,
  seed: number,
  numRuns: number,
): Promise<SuiteResult> => {
  const result = await runInWorker(
    new URL(import.meta.url),
    { fuzzSuite, seed: fuzzSeed(seed), numRuns },
    { caseTimeoutMs: CASE_TIMEOUT_MS },
  );
  const summary = `${fuzzSuite}: ${result.runs} cases in ${result.ms} ms (slowest ${result.maxCaseMs.toFixed(1)} ms), seed ${fuzzSeed(seed)}; ${JSON.stringify(result.stats)}`;
  t.diagnostic(summary);
  if (result.failed) assert.fail(result.report);
  return result;
};
