/**
 * Hostile input never crashes or wedges the node (issue 3). Property tests with
 * fast-check over fixed seeds (STATEWEAVE_FUZZ_SEED=<seed> replays a failure):
 *
 * a. the frame decoder returns a message or throws ProtocolError, for any bytes;
 * b. Room.applyUpdate / applyAwareness either refuse with a StateweaveError and
 *    leave the document (or presence) exactly as it was, or apply; the room stays
 *    usable, a fresh client syncs to the same state, and the store holds it too;
 * c. a real node under random and mutated WebSocket frames from many sockets keeps
 *    serving and holds exactly what it accepted;
 * d. the HTTP API answers random requests with JSON errors from the table;
 * e. document names are accepted only when they are safe.
 *
 * The in-process suites (a, b, e) run in a worker thread behind a watchdog: a case
 * that runs longer than CASE_TIMEOUT_MS (a decoder looping on crafted input) is
 * killed and reported with its input. This file is also that worker's entry point.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import * as Y from 'yjs';
import * as awarenessProtocol from 'y-protocols/awareness';
import * as decoding from 'lib0/decoding';
import * as encoding from 'lib0/encoding';
import { pino } from 'pino';
import { WebSocket } from 'ws';
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
import { MAX_DOC_NAME_LENGTH, validateDocName } from '../src/doc-name.js';
import { ERRORS, StateweaveError } from '../src/errors.js';
import { Room } from '../src/hub/room.js';
import { createMetrics } from '../src/metrics.js';
import type { Origin } from '../src/origin.js';
import { createMemoryStore } from '../src/storage/level-store.js';
import { docNameFromUrl } from '../src/transport/ws-endpoint.js';
import { stockClient, type Closed, type StockClient } from './helpers/clients.js';
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
} from './helpers/fuzz.js';
import { spawnNode, stopChild, tempDir, type ChildNode } from './helpers/node.js';
import { waitFor } from './helpers/wait.js';

const CASE_TIMEOUT_MS = 2000;

// ================================================================ generators

const CLIENT_IDS = [11, 0x7fffffff, 3_000_000_001] as const;
const LOCAL = Symbol('local');
const SYNCED = Symbol('sync');

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Shared = 'map' | 'array' | 'text' | 'xml' | 'subdoc' | 'binary';
type Value = { readonly json: Json } | { readonly shared: Shared };

/** One transaction of one editor, or a sync between two editors. */
type Edit =
  | {
      readonly kind: 'insert-text';
      readonly client: number;
      readonly at: number;
      readonly text: string;
      readonly bold: boolean;
    }
  | {
      readonly kind: 'delete-text';
      readonly client: number;
      readonly at: number;
      readonly length: number;
    }
  | {
      readonly kind: 'format';
      readonly client: number;
      readonly at: number;
      readonly length: number;
    }
  | { readonly kind: 'embed'; readonly client: number; readonly at: number }
  | { readonly kind: 'set'; readonly client: number; readonly key: string; readonly value: Value }
  | { readonly kind: 'unset'; readonly client: number; readonly key: string }
  | {
      readonly kind: 'insert';
      readonly client: number;
      readonly at: number;
      readonly values: readonly Value[];
    }
  | {
      readonly kind: 'remove';
      readonly client: number;
      readonly at: number;
      readonly length: number;
    }
  | {
      readonly kind: 'nested';
      readonly client: number;
      readonly pick: number;
      readonly text: string;
    }
  | {
      readonly kind: 'xml';
      readonly client: number;
      readonly at: number;
      readonly tag: string;
      readonly text: string;
    }
  | { readonly kind: 'sync'; readonly client: number; readonly to: number };

const client = fc.nat({ max: CLIENT_IDS.length - 1 });
const at = fc.nat({ max: 64 });
const textArb = fc.string({
  unit: fc.constantFrom('a', 'b', 'z', ' ', '\n', 'é', '日', '😀'),
  minLength: 1,
  maxLength: 6,
});
const jsonArb = fc.jsonValue({ maxDepth: 2 }) as fc.Arbitrary<Json>;
const valueArb: fc.Arbitrary<Value> = fc.oneof(
  { arbitrary: fc.record({ json: jsonArb }), weight: 3 },
  {
    arbitrary: fc.record({
      shared: fc.constantFrom<Shared>('map', 'array', 'text', 'xml', 'subdoc', 'binary'),
    }),
    weight: 2,
  },
);
const keyArb = fc.constantFrom('a', 'b', 'c', 'nested');

const editArb: fc.Arbitrary<Edit> = fc.oneof(
  {
    arbitrary: fc.record({
      kind: fc.constant('insert-text' as const),
      client,
      at,
      text: textArb,
      bold: fc.boolean(),
    }),
    weight: 4,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant('delete-text' as const),
      client,
      at,
      length: fc.integer({ min: 1, max: 5 }),
    }),
    weight: 2,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant('format' as const),
      client,
      at,
      length: fc.integer({ min: 1, max: 5 }),
    }),
    weight: 1,
  },
  { arbitrary: fc.record({ kind: fc.constant('embed' as const), client, at }), weight: 1 },
  {
    arbitrary: fc.record({
      kind: fc.constant('set' as const),
      client,
      key: keyArb,
      value: valueArb,
    }),
    weight: 3,
  },
  { arbitrary: fc.record({ kind: fc.constant('unset' as const), client, key: keyArb }), weight: 1 },
  {
    arbitrary: fc.record({
      kind: fc.constant('insert' as const),
      client,
      at,
      values: fc.array(valueArb, { minLength: 1, maxLength: 3 }),
    }),
    weight: 3,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant('remove' as const),
      client,
      at,
      length: fc.integer({ min: 1, max: 3 }),
    }),
    weight: 1,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant('nested' as const),
      client,
      pick: fc.nat(),
      text: textArb,
    }),
    weight: 3,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant('xml' as const),
      client,
      at,
      tag: fc.constantFrom('p', 'h1', 'li'),
      text: textArb,
    }),
    weight: 1,
  },
  { arbitrary: fc.record({ kind: fc.constant('sync' as const), client, to: client }), weight: 2 },
);

const toValue = (value: Value): unknown => {
  if ('json' in value) return value.json;
  switch (value.shared) {
    case 'map': {
      const map = new Y.Map<unknown>();
      map.set('k', 1);
      return map;
    }
    case 'array':
      return Y.Array.from<string | number>(['x', 2]);
    case 'text':
      return new Y.Text('t');
    case 'xml': {
      const element = new Y.XmlElement('p');
      element.insert(0, [new Y.XmlText('x')]);
      return element;
    }
    case 'subdoc':
      return new Y.Doc({ guid: 'sub' });
    case 'binary':
      return Uint8Array.of(1, 2, 3);
  }
};

/** Every nested shared type reachable from the root map and array, in document order. */
const nestedTypes = (doc: Y.Doc): Array<Y.AbstractType<unknown>> => {
  const found: Array<Y.AbstractType<unknown>> = [];
  const visit = (value: unknown): void => {
    if (!(value instanceof Y.AbstractType)) return;
    found.push(value);
    if (value instanceof Y.Map) for (const child of value.values()) visit(child);
    else if (value instanceof Y.Array || value instanceof Y.XmlElement)
      for (const child of value.toArray()) visit(child);
  };
  for (const child of doc.getMap('map').values()) visit(child);
  for (const child of doc.getArray('array').toArray()) visit(child);
  return found;
};

const applyEdit = (doc: Y.Doc, edit: Edit): void => {
  const text = doc.getText('text');
  const array = doc.getArray<unknown>('array');
  switch (edit.kind) {
    case 'insert-text':
      text.insert(edit.at % (text.length + 1), edit.text, edit.bold ? { bold: true } : undefined);
      return;
    case 'delete-text':
    case 'format': {
      if (text.length === 0) return;
      const from = edit.at % text.length;
      const length = Math.min(edit.length, text.length - from);
      if (edit.kind === 'format') text.format(from, length, { italic: true });
      else text.delete(from, length);
      return;
    }
    case 'embed':
      text.insertEmbed(edit.at % (text.length + 1), { image: 'x.png' });
      return;
    case 'set':
      doc.getMap<unknown>('map').set(edit.key, toValue(edit.value));
      return;
    case 'unset':
      doc.getMap('map').delete(edit.key);
      return;
    case 'insert':
      array.insert(edit.at % (array.length + 1), edit.values.map(toValue));
      return;
    case 'remove': {
      if (array.length === 0) return;
      const from = edit.at % array.length;
      array.delete(from, Math.min(edit.length, array.length - from));
      return;
    }
    case 'nested': {
      const types = nestedTypes(doc);
      const type = types[edit.pick % (types.length || 1)];
      if (type instanceof Y.Text) type.insert(edit.pick % (type.length + 1), edit.text);
      else if (type instanceof Y.Array) type.push([edit.text]);
      else if (type instanceof Y.Map) type.set('n', edit.text);
      else if (type instanceof Y.XmlElement) {
        type.setAttribute('title', edit.text);
        type.insert(0, [new Y.XmlText(edit.text)]);
      }
      return;
    }
    case 'xml': {
      const fragment = doc.getXmlFragment('xml');
      const element = new Y.XmlElement(edit.tag);
      element.insert(0, [new Y.XmlText(edit.text)]);
      fragment.insert(edit.at % (fragment.length + 1), [element]);
      return;
    }
    case 'sync':
      return; // handled by playScript
  }
};

interface Played {
  readonly docs: readonly Y.Doc[];
  /** One Yjs update per local transaction, in order. */
  readonly updates: readonly Uint8Array[];
  destroy(): void;
}

/** Runs an edit script on three editors with fixed client ids (so a seed replays exactly). */
const playScript = (edits: readonly Edit[]): Played => {
  const docs = CLIENT_IDS.map((id) => {
    const doc = new Y.Doc();
    doc.clientID = id;
    return doc;
  });
  const updates: Uint8Array[] = [];
  for (const doc of docs) {
    doc.on('update', (update: Uint8Array, origin: unknown) => {
      if (origin === LOCAL) updates.push(update);
    });
  }
  for (const edit of edits) {
    const doc = docs[edit.client % docs.length]!;
    if (edit.kind === 'sync') {
      const to = docs[edit.to % docs.length]!;
      if (to !== doc)
        Y.applyUpdate(to, Y.encodeStateAsUpdate(doc, Y.encodeStateVector(to)), SYNCED);
    } else doc.transact(() => applyEdit(doc, edit), LOCAL);
  }
  return {
    docs,
    updates,
    destroy: () => {
      for (const doc of docs) doc.destroy();
    },
  };
};

const scriptArb = fc.array(editArb, { minLength: 1, maxLength: 10 });

// ================================================================ a. frame decoder

/** Real payloads to wrap in frames and mutate, from a fixed editing session. */
const samplePayloads = () => {
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

const validFrameArb = (payloads: ReturnType<typeof samplePayloads>): fc.Arbitrary<Uint8Array> =>
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

const varint = (value: number): Uint8Array => {
  const e = encoding.createEncoder();
  encoding.writeVarUint(e, value);
  return encoding.toUint8Array(e);
};
const concat = (...parts: Uint8Array[]): Uint8Array =>
  Uint8Array.from(parts.flatMap((part) => [...part]));

const frameArb = (payloads: ReturnType<typeof samplePayloads>): fc.Arbitrary<Uint8Array> => {
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
const bytesOf = (message: ClientMessage): Uint8Array | undefined =>
  message.type === 'sync-step-1'
    ? message.stateVector
    : 'update' in message
      ? message.update
      : undefined;

const reencode = (message: ClientMessage): Uint8Array => {
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

const normal = (message: ClientMessage): unknown => {
  const bytes = bytesOf(message);
  return bytes
    ? { ...message, [message.type === 'sync-step-1' ? 'stateVector' : 'update']: hex(bytes) }
    : message;
};

interface FrameCase {
  readonly frame: Uint8Array;
  /** Where the frame sits inside a larger buffer (ws hands out such views). */
  readonly before: number;
  readonly after: number;
}

const frameSuite = async (job: WorkerJob): Promise<SuiteResult> => {
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

const ORIGIN: Origin = Object.freeze({ kind: 'client', connId: 2 });
const ACCEPTED_REFUSALS = new Set(['INVALID_UPDATE', 'DOC_TOO_LARGE']);

type TargetKind = 'one' | 'merged' | 'full' | 'diff';

interface UpdateCase {
  readonly edits: readonly Edit[];
  /** How many of the script's updates the room receives first, unmutated. */
  readonly base: number;
  readonly target: { readonly kind: TargetKind; readonly pick: number };
  readonly mutations: readonly Mutation[];
  readonly maxDocBytes: number;
}

const updateCaseArb: fc.Arbitrary<UpdateCase> = fc.record({
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
const caseInputs = (c: UpdateCase, played: Played, roomDoc?: Y.Doc) => {
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

const freshRoomOptions = async () => ({
  store: await createMemoryStore(),
  logger: pino({ level: 'silent' }),
  metrics: createMetrics({ collectDefault: false }),
  maxConnectionsPerDoc: 10,
  // Small, so that compaction of fuzzed state runs too.
  compactAfterUpdates: 3,
});

const PROBE_CLIENT = 424_242;

/**
 * One case through a Room. `strict`: every refusal is a StateweaveError with an
 * expected code and leaves no trace (state, state vector, broadcast, storage).
 * Either way the room must stay usable: a later update applies, a fresh client
 * syncs to the same state, and the store holds that state.
 */
const updateSuite =
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
      const room = new Room(`case/${++roomCounter}`, { ...options, maxDocBytes: c.maxDocBytes });
      const reference = new Y.Doc();
      try {
        await room.load();
        const broadcast: Uint8Array[] = [];
        room.subscribe({ connId: 1, send: (frame) => broadcast.push(frame) });

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

interface Presence {
  readonly client: number;
  readonly state: Json | null;
}

interface AwarenessCase {
  readonly base: readonly Presence[];
  readonly target: readonly Presence[];
  readonly mutations: readonly Mutation[];
}

const presenceArb: fc.Arbitrary<Presence> = fc.record({
  client,
  state: fc.oneof({ arbitrary: jsonArb, weight: 4 }, { arbitrary: fc.constant(null), weight: 1 }),
});
const awarenessCaseArb: fc.Arbitrary<AwarenessCase> = fc.record({
  base: fc.array(presenceArb, { maxLength: 4 }),
  target: fc.array(presenceArb, { minLength: 1, maxLength: 3 }),
  mutations: fc.oneof(
    { arbitrary: fc.constant([]), weight: 1 },
    { arbitrary: mutationsArb(), weight: 7 },
  ),
});

/** Malformed, or speaking for a client id another connection (or the node) owns. */
const AWARENESS_REFUSALS = new Set(['INVALID_FRAME', 'FORBIDDEN']);

const presenceView = (awareness: awarenessProtocol.Awareness) =>
  JSON.stringify({
    states: [...awareness.getStates()].sort(([a], [b]) => a - b),
    clocks: [...awareness.meta].map(([id, meta]) => [id, meta.clock]).sort(([a], [b]) => a! - b!),
  });

const awarenessSuite = async (job: WorkerJob): Promise<SuiteResult> => {
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
    const room = new Room(`presence/${++roomCounter}`, { ...options, maxDocBytes: 1 << 20 });
    const fresh = new awarenessProtocol.Awareness(new Y.Doc());
    try {
      await room.load();
      const broadcast: Uint8Array[] = [];
      room.subscribe({ connId: 1, send: (frame) => broadcast.push(frame) });
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

const NAME_CHARS = 'aZ09._~:@=+-/'.split('');
const nameArb: fc.Arbitrary<string> = fc.oneof(
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
const urlArb: fc.Arbitrary<string> = fc.oneof(
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

const ALLOWED = /^[A-Za-z0-9._~/:@=+-]*$/;

const nameSuite = async (job: WorkerJob): Promise<SuiteResult> => {
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

const SUITES: Record<string, (job: WorkerJob) => Promise<SuiteResult>> = {
  frames: frameSuite,
  'updates-strict': updateSuite(true),
  'updates-usable': updateSuite(false),
  awareness: awarenessSuite,
  names: nameSuite,
};

// ================================================================ c. hostile WebSocket traffic

const NET_MAX_FRAME_BYTES = 64 * 1024;

/** How one frame of hostile traffic is made. */
type FrameRecipe =
  | { readonly kind: 'update'; readonly pick: number; readonly step2: boolean }
  | {
      readonly kind: 'mutated-update';
      readonly pick: number;
      readonly step2: boolean;
      readonly mutations: readonly Mutation[];
      readonly wrap: boolean;
    }
  | { readonly kind: 'awareness'; readonly pick: number }
  | {
      readonly kind: 'mutated-awareness';
      readonly pick: number;
      readonly mutations: readonly Mutation[];
      readonly wrap: boolean;
    }
  | { readonly kind: 'step1'; readonly pick: number; readonly mutations: readonly Mutation[] }
  | { readonly kind: 'random'; readonly bytes: Uint8Array }
  | { readonly kind: 'control'; readonly which: 'query' | 'hello' | 'token' | 'empty' | 'saved' }
  | { readonly kind: 'text'; readonly text: string }
  | { readonly kind: 'oversize'; readonly extra: number };

const recipeArb: fc.Arbitrary<FrameRecipe> = fc.oneof(
  {
    arbitrary: fc.record({
      kind: fc.constant('update' as const),
      pick: fc.nat(),
      step2: fc.boolean(),
    }),
    weight: 6,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant('mutated-update' as const),
      pick: fc.nat(),
      step2: fc.boolean(),
      mutations: mutationsArb(3),
      wrap: fc.boolean(),
    }),
    weight: 8,
  },
  { arbitrary: fc.record({ kind: fc.constant('awareness' as const), pick: fc.nat() }), weight: 2 },
  {
    arbitrary: fc.record({
      kind: fc.constant('mutated-awareness' as const),
      pick: fc.nat(),
      mutations: mutationsArb(3),
      wrap: fc.boolean(),
    }),
    weight: 2,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant('step1' as const),
      pick: fc.nat(),
      mutations: fc.oneof(fc.constant([]), mutationsArb(2)),
    }),
    weight: 1,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant('random' as const),
      bytes: fc.uint8Array({ maxLength: 64 }),
    }),
    weight: 3,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant('control' as const),
      which: fc.constantFrom(
        'query' as const,
        'hello' as const,
        'token' as const,
        'empty' as const,
        'saved' as const,
      ),
    }),
    weight: 2,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant('text' as const),
      text: fc.string({ maxLength: 20 }),
    }),
    weight: 1,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant('oversize' as const),
      extra: fc.integer({ min: 1, max: 4096 }),
    }),
    weight: 1,
  },
);

interface NetPools {
  readonly updates: readonly Uint8Array[];
  readonly stateVectors: readonly Uint8Array[];
  /** Awareness states to announce (each socket announces its own client id). */
  readonly states: readonly Json[];
}

const netPools = (seed: number): NetPools => {
  const edits = fc.sample(fc.array(editArb, { minLength: 80, maxLength: 80 }), {
    seed,
    numRuns: 1,
  })[0]!;
  const played = playScript(edits);
  const pools: NetPools = {
    updates: [...played.updates],
    stateVectors: [
      ...played.docs.map((doc) => Y.encodeStateVector(doc)),
      Y.encodeStateVector(new Y.Doc()),
    ],
    states: [
      { user: { name: 'ana', color: '#f00' } },
      { cursor: { anchor: 1, head: 4 } },
      null,
      { user: 'b', typing: true },
    ],
  };
  played.destroy();
  return pools;
};

/** An awareness update for one client id (with a clock that only grows). */
const awarenessUpdate = (clientId: number, clock: number, state: Json): Uint8Array => {
  const e = encoding.createEncoder();
  encoding.writeVarUint(e, 1);
  encoding.writeVarUint(e, clientId);
  encoding.writeVarUint(e, clock);
  encoding.writeVarString(e, JSON.stringify(state));
  return encoding.toUint8Array(e);
};

/** The frame of a recipe; `awarenessId` is the client id the sending socket speaks for. */
const buildFrame = (
  recipe: FrameRecipe,
  pools: NetPools,
  awarenessId: number,
  clock: number,
): Uint8Array | string => {
  const pickUpdate = (pick: number) => pools.updates[pick % pools.updates.length]!;
  switch (recipe.kind) {
    case 'update':
      return (recipe.step2 ? encodeSyncStep2 : encodeUpdate)(pickUpdate(recipe.pick));
    case 'mutated-update': {
      const wrap = recipe.step2 ? encodeSyncStep2 : encodeUpdate;
      const update = pickUpdate(recipe.pick);
      return recipe.wrap
        ? wrap(mutate(update, recipe.mutations))
        : mutate(wrap(update), recipe.mutations);
    }
    case 'awareness':
      return encodeAwareness(
        awarenessUpdate(awarenessId, clock, pools.states[recipe.pick % pools.states.length]!),
      );
    case 'mutated-awareness': {
      const update = awarenessUpdate(
        awarenessId,
        clock,
        pools.states[recipe.pick % pools.states.length]!,
      );
      return recipe.wrap
        ? encodeAwareness(mutate(update, recipe.mutations))
        : mutate(encodeAwareness(update), recipe.mutations);
    }
    case 'step1': {
      const frame = encodeSyncStep1(pools.stateVectors[recipe.pick % pools.stateVectors.length]!);
      return recipe.mutations.length > 0 ? mutate(frame, recipe.mutations) : frame;
    }
    case 'random':
      return recipe.bytes;
    case 'control':
      switch (recipe.which) {
        case 'query':
          return encodeQueryAwareness();
        case 'hello':
          return encodeHello();
        case 'token':
          return encodeToken('not.a.jwt');
        case 'empty':
          return new Uint8Array(0);
        case 'saved':
          return encodeSaved(1);
      }
      break;
    case 'text':
      return recipe.text;
    case 'oversize':
      return new Uint8Array(NET_MAX_FRAME_BYTES + recipe.extra).fill(7);
  }
  throw new Error('unreachable');
};

const describeFrame = (frame: Uint8Array | string): string =>
  typeof frame === 'string'
    ? `text ${JSON.stringify(frame)}`
    : frame.length > 512
      ? `${frame.length} bytes starting ${hex(frame.subarray(0, 32))}`
      : hex(frame);

const tryDecode = (frame: Uint8Array | string): ClientMessage | undefined => {
  if (typeof frame === 'string') return undefined;
  try {
    return decodeClientMessage(frame);
  } catch {
    return undefined;
  }
};

/** A socket of the hostile traffic: counts the node's sync step 2 answers. */
interface FuzzSocket {
  readonly ws: WebSocket;
  readonly awarenessId: number;
  clock: number;
  step2s: number;
  /** Payload of the last sync step 2 (the full state, when it answered PROBE). */
  lastStep2: Uint8Array | undefined;
  closedWith: Closed | undefined;
}

let nextAwarenessId = 70_000;

const openFuzzSocket = async (wsUrl: string, docName: string): Promise<FuzzSocket> => {
  const ws = new WebSocket(`${wsUrl}/${docName}`, { perMessageDeflate: false });
  const socket: FuzzSocket = {
    ws,
    awarenessId: nextAwarenessId++,
    clock: 0,
    step2s: 0,
    lastStep2: undefined,
    closedWith: undefined,
  };
  let greeted = false;
  ws.on('error', () => undefined); // the close code is what counts
  ws.on('message', (data: Buffer) => {
    if (data[0] !== 0) return;
    if (data[1] === 0) greeted = true;
    if (data[1] !== 1) return;
    socket.step2s++;
    const decoder = decoding.createDecoder(data);
    decoding.readVarUint(decoder);
    decoding.readVarUint(decoder);
    socket.lastStep2 = decoding.readVarUint8Array(decoder).slice();
  });
  ws.once('close', (code, reason) => (socket.closedWith = { code, reason: reason.toString() }));
  await waitFor(
    () => greeted || socket.closedWith,
    `the node to greet a socket on ${docName}`,
    5000,
    2,
  );
  if (!greeted)
    throw new Error(`the node closed a fresh socket: ${JSON.stringify(socket.closedWith)}`);
  return socket;
};

/**
 * A document as a client that syncs from scratch sees it. Compare this, not two
 * docs directly: a doc can keep structs pending that a fresh doc applying its
 * full state (which carries the pending part) integrates at once.
 */
const clientView = (state: Uint8Array) => {
  const doc = new Y.Doc();
  Y.applyUpdate(doc, state);
  const view = docView(doc);
  doc.destroy();
  return view;
};

/** Sync step 1 that the node answers with a step 2: proof that it processed all before. */
const PROBE = encodeSyncStep1(Y.encodeStateVector(new Y.Doc()));

const TABLE_CLOSE_CODES = new Set<number>(Object.values(ERRORS).map((e) => e.close));

interface SerialRun {
  readonly frames: number;
  readonly accepted: number;
  readonly acceptedUpdates: number;
  readonly sockets: number;
  readonly closes: Record<string, number>;
  /** Refusals with a code outside the table or INTERNAL (1011): the frame and the reason. */
  readonly unexpected: string[];
  /** Frames the node accepted but a plain Y.Doc refuses. */
  readonly divergent: string[];
  /**
   * The first time the node's state (its answer to a probe) differed from the
   * reference, with the frames sent since the two last agreed.
   */
  readonly firstDivergence: string | undefined;
  readonly reference: Y.Doc;
  readonly ms: number;
}

/**
 * Hostile frames one at a time, round-robin over `socketCount` sockets, each
 * followed by a probe: an answer means the frame was accepted, a close that it
 * was refused. Updates the node accepted are applied to a reference doc.
 */
const serialTraffic = async (
  wsUrl: string,
  docName: string,
  seed: number,
  count: number,
  socketCount: number,
): Promise<SerialRun> => {
  const started = Date.now();
  const pools = netPools(seed);
  const recipes = fc.sample(recipeArb, { seed, numRuns: count });
  const reference = new Y.Doc();
  const sockets: FuzzSocket[] = [];
  for (let i = 0; i < socketCount; i++) sockets.push(await openFuzzSocket(wsUrl, docName));
  let opened = socketCount;
  let accepted = 0;
  let acceptedUpdates = 0;
  const closes: Record<string, number> = {};
  const unexpected: string[] = [];
  const divergent: string[] = [];
  let firstDivergence: string | undefined;
  let sinceAgreement: string[] = [];
  for (const [i, recipe] of recipes.entries()) {
    const slot = i % socketCount;
    const socket = sockets[slot]!;
    const frame = buildFrame(recipe, pools, socket.awarenessId, ++socket.clock);
    const message = tryDecode(frame);
    const expected = socket.step2s + (message?.type === 'sync-step-1' ? 1 : 0) + 1;
    socket.ws.send(frame);
    socket.ws.send(PROBE);
    try {
      await waitFor(
        () => socket.step2s >= expected || socket.closedWith,
        'an answer or a close',
        CASE_TIMEOUT_MS,
        1,
      );
    } catch {
      throw new Error(
        `frame #${i} (seed ${seed}) got neither an answer nor a close within ${CASE_TIMEOUT_MS} ms: ${describeFrame(frame)}`,
      );
    }
    if (socket.closedWith) {
      const { code, reason } = socket.closedWith;
      sinceAgreement.push(`#${i} refused (${code} ${reason}): ${describeFrame(frame)}`);
      closes[code] = (closes[code] ?? 0) + 1;
      if (!TABLE_CLOSE_CODES.has(code) || code === ERRORS.INTERNAL.close)
        unexpected.push(`${code} ${reason} for frame ${describeFrame(frame)}`);
      sockets[slot] = await openFuzzSocket(wsUrl, docName);
      opened++;
      continue;
    }
    accepted++;
    if (message?.type === 'update' || message?.type === 'sync-step-2') {
      acceptedUpdates++;
      try {
        Y.applyUpdate(reference, message.update);
      } catch (err) {
        divergent.push(`${describeFrame(frame)}: ${String(err)}`);
      }
    }
    sinceAgreement.push(`#${i} accepted: ${describeFrame(frame)}`);
    if (firstDivergence === undefined) {
      const [node, expected] = [
        clientView(socket.lastStep2!),
        clientView(Y.encodeStateAsUpdate(reference)),
      ];
      if (node.snapshot !== expected.snapshot || node.content !== expected.content) {
        firstDivergence = `after frame #${i} (seed ${seed}) the node holds ${JSON.stringify(node)} but the accepted updates make ${JSON.stringify(expected)}; frames since they last agreed:\n${sinceAgreement.join('\n')}`;
      }
      sinceAgreement = [];
    }
    // A token message is checked asynchronously; start over rather than race it.
    if (message?.type === 'token') {
      socket.ws.close();
      sockets[slot] = await openFuzzSocket(wsUrl, docName);
      opened++;
    }
  }
  for (const socket of sockets) socket.ws.close();
  return {
    frames: recipes.length,
    accepted,
    acceptedUpdates,
    sockets: opened,
    closes,
    unexpected,
    divergent,
    firstDivergence,
    reference,
    ms: Date.now() - started,
  };
};

/** What the node must do with a frame, decided without asking it (or unknown). */
type Verdict =
  | { readonly accept: true; readonly update?: Uint8Array; readonly step1: boolean }
  | { readonly accept: false; readonly close: number }
  | undefined;

const verdict = (frame: Uint8Array | string, recipe: FrameRecipe): Verdict => {
  if (typeof frame === 'string') return { accept: false, close: ERRORS.TEXT_FRAME.close };
  if (frame.length > NET_MAX_FRAME_BYTES)
    return { accept: false, close: ERRORS.FRAME_TOO_LARGE.close };
  let message: ClientMessage;
  try {
    message = decodeClientMessage(frame);
  } catch {
    return { accept: false, close: ERRORS.INVALID_FRAME.close };
  }
  const valid = !('mutations' in recipe) || recipe.mutations.length === 0;
  switch (message.type) {
    case 'update':
    case 'sync-step-2':
      try {
        Y.decodeUpdate(message.update);
      } catch {
        return { accept: false, close: ERRORS.INVALID_UPDATE.close };
      }
      return valid ? { accept: true, update: message.update, step1: false } : undefined;
    case 'awareness':
      try {
        decodeAwarenessUpdate(message.update);
      } catch {
        return { accept: false, close: ERRORS.INVALID_FRAME.close };
      }
      return valid ? { accept: true, step1: false } : undefined;
    case 'sync-step-1':
      return valid ? { accept: true, step1: true } : undefined;
    case 'query-awareness':
    case 'hello':
      return { accept: true, step1: false };
    case 'token':
      return undefined; // checked asynchronously
    case 'invoke':
      return undefined; // answered by the invoke channel, not by the room
  }
};

interface ConcurrentRun {
  readonly sockets: number;
  readonly frames: number;
  readonly refusedSockets: number;
  /** Frames sent after a refused one on the same socket (they must have no effect). */
  readonly ignoredFrames: number;
  readonly reference: Y.Doc;
  readonly ms: number;
}

/**
 * Many sockets send their scripts at once, without waiting. Only frames whose
 * fate is known in advance are used, so the document must end up holding exactly
 * the valid updates that precede each socket's first refused frame.
 */
const concurrentTraffic = async (
  wsUrl: string,
  docName: string,
  seed: number,
  socketCount: number,
): Promise<ConcurrentRun> => {
  const started = Date.now();
  const pools = netPools(seed);
  const scripts = fc.sample(fc.array(recipeArb, { minLength: 6, maxLength: 16 }), {
    seed: seed + 1,
    numRuns: socketCount,
  });
  const sockets = await Promise.all(scripts.map(() => openFuzzSocket(wsUrl, docName)));
  const reference = new Y.Doc();
  let frames = 0;
  let ignoredFrames = 0;
  const plans = sockets.map((socket, i) => {
    const planned: Array<{ frame: Uint8Array | string; verdict: NonNullable<Verdict> }> = [];
    for (const recipe of scripts[i]!) {
      const frame = buildFrame(recipe, pools, socket.awarenessId, ++socket.clock);
      const v = verdict(frame, recipe);
      if (v) planned.push({ frame, verdict: v });
    }
    const firstRefusal = planned.findIndex((p) => !p.verdict.accept);
    const acceptedPart = firstRefusal === -1 ? planned : planned.slice(0, firstRefusal);
    for (const p of acceptedPart)
      if (p.verdict.accept && p.verdict.update) Y.applyUpdate(reference, p.verdict.update);
    frames += planned.length;
    ignoredFrames += firstRefusal === -1 ? 0 : planned.length - firstRefusal - 1;
    return {
      socket,
      planned,
      refusal: firstRefusal === -1 ? undefined : planned[firstRefusal]!,
      step1s: acceptedPart.filter((p) => p.verdict.accept && p.verdict.step1).length,
    };
  });
  // Interleaved, all at once.
  const longest = Math.max(...plans.map((p) => p.planned.length));
  for (let r = 0; r < longest; r++)
    for (const plan of plans)
      if (r < plan.planned.length) plan.socket.ws.send(plan.planned[r]!.frame);
  for (const plan of plans) {
    if (plan.refusal) {
      await waitFor(
        () => plan.socket.closedWith,
        `the node to refuse ${describeFrame(plan.refusal.frame)}`,
        5000,
        2,
      );
      const expected = (plan.refusal.verdict as { close: number }).close;
      assert.equal(
        plan.socket.closedWith!.code,
        expected,
        `close code for ${describeFrame(plan.refusal.frame)} (${plan.socket.closedWith!.reason})`,
      );
    } else {
      plan.socket.ws.send(PROBE);
      await waitFor(
        () => plan.socket.step2s >= plan.step1s + 1 || plan.socket.closedWith,
        'the node to answer a socket that sent only valid frames',
        5000,
        2,
      );
      assert.equal(
        plan.socket.closedWith,
        undefined,
        `a socket that sent only acceptable frames was closed: ${plan.planned.map((p) => describeFrame(p.frame)).join(', ')}`,
      );
      plan.socket.ws.close();
    }
  }
  return {
    sockets: socketCount,
    frames,
    refusedSockets: plans.filter((p) => p.refusal).length,
    ignoredFrames,
    reference,
    ms: Date.now() - started,
  };
};

// ================================================================ d. hostile HTTP requests

interface RawResponse {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: Buffer;
}

const parseResponse = (data: Buffer): RawResponse | undefined => {
  let rest = data;
  for (;;) {
    const end = rest.indexOf('\r\n\r\n');
    if (end === -1) return undefined;
    const [statusLine, ...lines] = rest.subarray(0, end).toString('latin1').split('\r\n');
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine ?? '')?.[1]);
    const headers: Record<string, string> = {};
    for (const line of lines) {
      const colon = line.indexOf(':');
      headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    rest = rest.subarray(end + 4);
    if (status >= 100 && status < 200) continue; // 100 Continue and friends
    let body = rest;
    if (headers['content-length'] !== undefined)
      body = rest.subarray(0, Number(headers['content-length']));
    else if (headers['transfer-encoding']?.includes('chunked')) {
      const chunks: Buffer[] = [];
      let at = 0;
      for (;;) {
        const lineEnd = rest.indexOf('\r\n', at);
        const size = parseInt(rest.subarray(at, lineEnd).toString(), 16);
        if (!(size > 0)) break;
        chunks.push(rest.subarray(lineEnd + 2, lineEnd + 2 + size));
        at = lineEnd + 2 + size + 2;
      }
      body = Buffer.concat(chunks);
    }
    return { status, headers, body };
  }
};

/** Writes raw bytes to the node and reads until it closes (or the time is up). */
const rawHttp = (
  port: number,
  request: Buffer,
  { timeoutMs = CASE_TIMEOUT_MS, halfClose = false } = {},
): Promise<{ response?: RawResponse; timedOut: boolean; raw: Buffer }> =>
  new Promise((resolve) => {
    const socket: Socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let done = false;
    const finish = (timedOut: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      const raw = Buffer.concat(chunks);
      resolve({ response: parseResponse(raw), timedOut, raw });
    };
    const timer = setTimeout(() => finish(true), timeoutMs);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', () => finish(false));
    socket.on('close', () => finish(false));
    // Half-closing tells the node nothing more is coming (for requests cut short).
    if (halfClose) socket.end(request);
    else socket.write(request);
  });

type BodyRecipe =
  | { readonly kind: 'empty' }
  | { readonly kind: 'random'; readonly bytes: Uint8Array }
  | { readonly kind: 'update'; readonly pick: number }
  | { readonly kind: 'mutated'; readonly pick: number; readonly mutations: readonly Mutation[] }
  | { readonly kind: 'gzip-update'; readonly pick: number }
  | { readonly kind: 'gzip-bomb' }
  | { readonly kind: 'oversize' }
  | { readonly kind: 'json' };

interface HttpCase {
  readonly method: string;
  readonly target: string;
  readonly headers: ReadonlyArray<readonly [string, string]>;
  readonly body: BodyRecipe;
}

const pathSegmentArb: fc.Arbitrary<string> = fc.oneof(
  {
    arbitrary: fc.string({
      unit: fc.constantFrom(...'abcXYZ019-._~:@=+'.split('')),
      minLength: 1,
      maxLength: 12,
    }),
    weight: 5,
  },
  {
    arbitrary: fc.constantFrom(
      '.',
      '..',
      '%2e%2e',
      '%2E',
      '%2f',
      '%2F',
      '%00',
      '%',
      '%zz',
      '%e0%a4%a',
      '%C3%A9',
      '%5C',
      '%20',
      '%ff',
      '%25',
      '%u0041',
      '..%2f..',
      '%252e',
      ';',
      ',',
      '!',
      '$',
      "'",
      '(',
      ')',
      '*',
      '[',
      ']',
      '~',
      '%0a',
      '%0d%0a',
    ),
    weight: 4,
  },
  { arbitrary: fc.integer({ min: 250, max: 6000 }).map((n) => 'x'.repeat(n)), weight: 1 },
  {
    arbitrary: fc.string({
      unit: fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c)),
      maxLength: 16,
    }),
    weight: 3,
  },
  {
    arbitrary: fc.string({ unit: 'grapheme', maxLength: 6 }).map((s) => encodeURIComponent(s)),
    weight: 2,
  },
);

const httpCaseArb: fc.Arbitrary<HttpCase> = fc.record({
  method: fc.constantFrom(
    'GET',
    'GET',
    'POST',
    'POST',
    'POST',
    'PUT',
    'DELETE',
    'PATCH',
    'HEAD',
    'OPTIONS',
    'PROPFIND',
  ),
  target: fc.oneof(
    // Shaped like the API's routes, with hostile names.
    {
      arbitrary: fc
        .tuple(
          fc.array(pathSegmentArb, { minLength: 1, maxLength: 3 }),
          fc.constantFrom('', '/updates', '/updates', '/updates', '?x=1', '/updates?token=%zz'),
        )
        .map(([segments, suffix]) => `/v1/docs/${segments.join('/')}${suffix}`),
      weight: 3,
    },
    {
      arbitrary: fc
        .tuple(
          fc.constantFrom(
            '/v1/docs/',
            '/v1/docs',
            '/v1/',
            '/',
            '//',
            '/v1/docs//',
            '/healthz',
            '/metrics',
            '/readyz',
            '/V1/DOCS/',
            '/v1/docs/%2e%2e/',
            '/..',
          ),
          fc.array(pathSegmentArb, { maxLength: 4 }),
          fc.constantFrom('', '/updates', '/updates/', '/updates/x', '/', '?x=1', '#frag'),
        )
        .map(([prefix, segments, suffix]) => `${prefix}${segments.join('/')}${suffix}`),
      weight: 2,
    },
  ),
  headers: fc.array(
    fc.oneof(
      fc.tuple(
        fc.constant('Content-Type'),
        fc.constantFrom(
          'application/octet-stream',
          'application/json',
          'text/plain',
          'text/plain; charset=utf-16',
          'multipart/form-data; boundary=x',
          'application/x-www-form-urlencoded',
          '*/*',
          'application/octet-stream; charset=bogus',
        ),
      ),
      fc.tuple(
        fc.constant('Accept'),
        fc.constantFrom(
          'application/json',
          'application/octet-stream',
          '*/*',
          'text/html',
          'application/octet-stream;q=0.1, application/json;q=0.9',
          'garbage;;;q=x',
        ),
      ),
      fc.tuple(
        fc.constant('Content-Encoding'),
        fc.constantFrom('identity', 'bogus', 'deflate', 'br', 'gzip, gzip'),
      ),
      fc.tuple(
        fc.constant('Authorization'),
        fc.constantFrom(
          'Bearer x',
          'Bearer',
          'Basic Og==',
          `Bearer ${'a'.repeat(4000)}`,
          'Bearer a.b.c',
        ),
      ),
      fc.tuple(
        fc.constantFrom('X-Junk', 'Cookie', 'Range', 'If-None-Match'),
        fc.string({
          unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)),
          maxLength: 64,
        }),
      ),
    ),
    { maxLength: 3 },
  ),
  body: fc.oneof(
    { arbitrary: fc.constant<BodyRecipe>({ kind: 'empty' }), weight: 3 },
    {
      arbitrary: fc.record({
        kind: fc.constant('random' as const),
        bytes: fc.uint8Array({ maxLength: 2048 }),
      }),
      weight: 2,
    },
    { arbitrary: fc.record({ kind: fc.constant('update' as const), pick: fc.nat() }), weight: 3 },
    {
      arbitrary: fc.record({
        kind: fc.constant('mutated' as const),
        pick: fc.nat(),
        mutations: mutationsArb(3),
      }),
      weight: 4,
    },
    {
      arbitrary: fc.record({ kind: fc.constant('gzip-update' as const), pick: fc.nat() }),
      weight: 1,
    },
    { arbitrary: fc.constant<BodyRecipe>({ kind: 'gzip-bomb' }), weight: 1 },
    { arbitrary: fc.constant<BodyRecipe>({ kind: 'oversize' }), weight: 1 },
    { arbitrary: fc.constant<BodyRecipe>({ kind: 'json' }), weight: 1 },
  ),
});

let gzipBomb: Buffer | undefined;

const httpRequestBytes = (c: HttpCase, pools: NetPools): Buffer => {
  const pickUpdate = (pick: number) => pools.updates[pick % pools.updates.length]!;
  const headers = c.headers
    .filter(([name]) => name !== 'Content-Encoding' || !c.body.kind.startsWith('gzip'))
    .map(([n, v]) => [n, v] as const);
  let body: Uint8Array;
  switch (c.body.kind) {
    case 'empty':
      body = new Uint8Array(0);
      break;
    case 'random':
      body = c.body.bytes;
      break;
    case 'update':
      body = pickUpdate(c.body.pick);
      break;
    case 'mutated':
      body = mutate(pickUpdate(c.body.pick), c.body.mutations);
      break;
    case 'gzip-update':
      body = gzipSync(pickUpdate(c.body.pick));
      headers.push(['Content-Encoding', 'gzip']);
      break;
    case 'gzip-bomb':
      // 32 MiB of zeros in ~32 KiB: must be refused by the body limit, not inflated.
      body = gzipBomb ??= gzipSync(Buffer.alloc(32 * 1024 * 1024), { level: 9 });
      headers.push(['Content-Encoding', 'gzip']);
      break;
    case 'oversize':
      body = new Uint8Array(NET_MAX_FRAME_BYTES + 1).fill(1);
      break;
    case 'json':
      body = Buffer.from(JSON.stringify({ update: [1, 2, 3] }));
      break;
  }
  const head =
    `${c.method} ${c.target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n` +
    headers.map(([name, value]) => `${name}: ${value}\r\n`).join('') +
    `Content-Length: ${body.byteLength}\r\n\r\n`;
  return Buffer.concat([Buffer.from(head, 'latin1'), body]);
};

const describeHttp = (c: HttpCase, request: Buffer): string => {
  const text = request.toString('latin1');
  const headEnd = text.indexOf('\r\n\r\n');
  const head = text.slice(0, headEnd).replace(/a{100,}|x{100,}/g, (m) => `${m[0]}×${m.length}`);
  return `${JSON.stringify(head)} + ${request.length - headEnd - 4}-byte body (${c.body.kind}${'bytes' in c.body ? ` ${hex(c.body.bytes).slice(0, 200)}` : ''}${c.body.kind === 'mutated' ? ` ${hex(request.subarray(headEnd + 4))}` : ''})`;
};

interface HttpRun {
  readonly requests: number;
  readonly statuses: Record<string, number>;
  /** Answers that are not a JSON error from the table (or a 2xx). */
  readonly malformed: string[];
  readonly serverErrors: string[];
  readonly ms: number;
  readonly maxMs: number;
}

/** Checks one answer of the API: a 2xx, or a JSON error whose code carries that status. */
const checkAnswer = (method: string, response: RawResponse): string | undefined => {
  const { status } = response;
  if (status >= 200 && status < 300) return undefined;
  if (status < 400 || status >= 600) return `status ${status}`;
  if (method === 'HEAD') return undefined; // no body by definition
  if (!response.headers['content-type']?.startsWith('application/json'))
    return `status ${status} with content-type ${response.headers['content-type']}`;
  let body: { error?: { code?: unknown; message?: unknown } };
  try {
    body = JSON.parse(response.body.toString()) as typeof body;
  } catch {
    return `status ${status} with a body that is not JSON: ${response.body.toString().slice(0, 200)}`;
  }
  const code = body.error?.code;
  if (typeof code !== 'string' || !(code in ERRORS))
    return `status ${status} with unknown code ${String(code)}`;
  if (ERRORS[code as keyof typeof ERRORS].status !== status)
    return `status ${status} with code ${code}`;
  if (typeof body.error?.message !== 'string') return `status ${status} without a message`;
  return undefined;
};

const healthy = async (node: ChildNode): Promise<void> => {
  assert.equal(
    node.child.exitCode,
    null,
    `the node exited:\n${node
      .output()
      .split('\n')
      .filter((l) => l.includes('"level":60'))
      .join('\n')}`,
  );
  const res = await fetch(`${node.url}/healthz`, { signal: AbortSignal.timeout(CASE_TIMEOUT_MS) });
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { status: 'ok' });
};

const httpTraffic = async (
  node: ChildNode,
  seed: number,
  count: number,
  fixed: HttpCase[],
): Promise<HttpRun> => {
  const started = Date.now();
  const pools = netPools(seed);
  const cases = [...fixed, ...fc.sample(httpCaseArb, { seed, numRuns: count })];
  const statuses: Record<string, number> = {};
  const malformed: string[] = [];
  const serverErrors: string[] = [];
  let maxMs = 0;
  for (const [i, c] of cases.entries()) {
    const request = httpRequestBytes(c, pools);
    const t0 = Date.now();
    const { response, timedOut, raw } = await rawHttp(node.port, request);
    maxMs = Math.max(maxMs, Date.now() - t0);
    if (timedOut)
      throw new Error(
        `request #${i} (seed ${seed}) got no answer within ${CASE_TIMEOUT_MS} ms: ${describeHttp(c, request)}`,
      );
    if (!response) {
      malformed.push(`no HTTP answer (${raw.length} bytes) to ${describeHttp(c, request)}`);
      continue;
    }
    statuses[response.status] = (statuses[response.status] ?? 0) + 1;
    const problem = checkAnswer(c.method, response);
    if (problem) malformed.push(`${problem} for ${describeHttp(c, request)}`);
    if (response.status >= 500)
      serverErrors.push(
        `${response.status} ${response.body.toString().slice(0, 200)} for ${describeHttp(c, request)}`,
      );
    if (i % 25 === 24) await healthy(node);
  }
  return {
    requests: cases.length,
    statuses,
    malformed,
    serverErrors,
    ms: Date.now() - started,
    maxMs,
  };
};

/** Requests that break HTTP itself: Node's parser answers them, not the API. */
const PROTOCOL_JUNK: ReadonlyArray<readonly [string, Buffer]> = [
  ['garbage request line', Buffer.from('GARBAGE\r\n\r\n')],
  ['space in the path', Buffer.from('GET /v1/docs/a b HTTP/1.1\r\nHost: x\r\n\r\n')],
  ['control character in the path', Buffer.from('GET /v1/docs/\x01 HTTP/1.1\r\nHost: x\r\n\r\n')],
  [
    'raw non-ASCII bytes in the path',
    Buffer.concat([
      Buffer.from('GET /v1/docs/'),
      Buffer.from([0xff, 0xfe, 0xc3]),
      Buffer.from(' HTTP/1.1\r\nHost: x\r\n\r\n'),
    ]),
  ],
  ['unknown method', Buffer.from('FOO /v1/docs/a HTTP/1.1\r\nHost: x\r\n\r\n')],
  ['header without a colon', Buffer.from('GET /v1/docs/a HTTP/1.1\r\nHost: x\r\nno-colon\r\n\r\n')],
  [
    'space in a header name',
    Buffer.from('GET /v1/docs/a HTTP/1.1\r\nHost: x\r\nBad Name: y\r\n\r\n'),
  ],
  [
    'negative Content-Length',
    Buffer.from('POST /v1/docs/a/updates HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n'),
  ],
  [
    'non-numeric Content-Length',
    Buffer.from('POST /v1/docs/a/updates HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n'),
  ],
  [
    'two different Content-Lengths',
    Buffer.from(
      'POST /v1/docs/a/updates HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab',
    ),
  ],
  [
    'Content-Length and chunked',
    Buffer.from(
      'POST /v1/docs/a/updates HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    ),
  ],
  [
    'bad chunk size',
    Buffer.from(
      'POST /v1/docs/a/updates HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n',
    ),
  ],
  [
    'huge chunk size',
    Buffer.from(
      'POST /v1/docs/a/updates HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\nab\r\n',
    ),
  ],
  [
    'oversized header',
    Buffer.from(`GET /v1/docs/a HTTP/1.1\r\nHost: x\r\nX-Big: ${'b'.repeat(20_000)}\r\n\r\n`),
  ],
  [
    'oversized request line',
    Buffer.from(`GET /v1/docs/${'c'.repeat(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`),
  ],
  ['HTTP/9.9', Buffer.from('GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n')],
  ['CONNECT', Buffer.from('CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n')],
  [
    'absolute-form target',
    Buffer.from(
      'GET http://evil.example/v1/docs/a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
    ),
  ],
  [
    'asterisk-form target',
    Buffer.from('OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'),
  ],
  ['truncated head', Buffer.from('GET /v1/docs/a HTTP/1.1\r\nHost: x\r\n')],
  [
    'pipelined valid and invalid',
    Buffer.from(
      'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /v1/docs/%zz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
    ),
  ],
  [
    'websocket upgrade to a bad name',
    Buffer.from(
      'GET /a/../b HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
    ),
  ],
  [
    'websocket upgrade with a bad key',
    Buffer.from(
      'GET /doc HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: short\r\n\r\n',
    ),
  ],
  [
    'websocket upgrade with a bad version',
    Buffer.from(
      'GET /doc HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 99\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
    ),
  ],
];

// ================================================================ known hostile inputs

/** A V1 update with one legacy JSON item (content ref 2) nested `depth` arrays deep. */
const deepJsonUpdate = (depth: number): Uint8Array => {
  const e = encoding.createEncoder();
  for (const n of [1, 1, 7, 0, 2, 1]) encoding.writeVarUint(e, n); // 1 client, 1 struct, client 7, clock 0, info, parent is a root key
  encoding.writeVarString(e, 'arr');
  encoding.writeVarUint(e, 1);
  encoding.writeVarString(e, '['.repeat(depth) + ']'.repeat(depth));
  encoding.writeVarUint(e, 0); // empty delete set
  return encoding.toUint8Array(e);
};

/** A V1 update with one ContentAny item (content ref 8): `depth` nested one-element arrays around null. */
const deepAnyUpdate = (depth: number): Uint8Array => {
  const e = encoding.createEncoder();
  for (const n of [1, 1, 7, 0, 8, 1]) encoding.writeVarUint(e, n);
  encoding.writeVarString(e, 'arr');
  encoding.writeVarUint(e, 1);
  for (let i = 0; i < depth; i++) {
    encoding.writeUint8(e, 117); // array
    encoding.writeVarUint(e, 1);
  }
  encoding.writeUint8(e, 126); // null
  encoding.writeVarUint(e, 0);
  return encoding.toUint8Array(e);
};

/** An awareness update whose state is `depth` nested arrays (JSON.stringify overflows the stack). */
const deepAwarenessUpdate = (clientId: number, depth: number): Uint8Array => {
  const e = encoding.createEncoder();
  encoding.writeVarUint(e, 1);
  encoding.writeVarUint(e, clientId);
  encoding.writeVarUint(e, 1);
  encoding.writeVarString(e, '['.repeat(depth) + ']'.repeat(depth));
  return encoding.toUint8Array(e);
};

/**
 * A stock client, or undefined if it cannot sync; its doc is destroyed either way
 * (that also stops the provider's awareness timer, which would keep the test alive).
 */
const stockClientOrNothing = async (
  wsUrl: string,
  docName: string,
): Promise<StockClient | undefined> => {
  const doc = new Y.Doc();
  try {
    return await stockClient(wsUrl, docName, doc);
  } catch {
    doc.destroy();
    return undefined;
  }
};

const fromHex = (text: string): Uint8Array => Uint8Array.from(Buffer.from(text, 'hex'));

/** Minimal reproductions found by the fuzzer, shrunk by hand. */
const REPRODUCTIONS = {
  /** Delete set with a zero-length range: Yjs throws "Unexpected case". Doc unchanged. */
  zeroLengthDelete: { base: [], update: '000100010000' },
  /** An item whose origin is a GC'd struct: TypeError. Doc unchanged. */
  originInGc: {
    base: ['0103ffffffff070000000000000000'],
    update: '0101ffffffff070088ffffffff07010000',
  },
  /** A zero-length item after a GC struct: TypeError after integrating; the doc can no longer be encoded. */
  zeroLengthItem: { base: [], update: '0102e2ebf9f90900000188e2ebf9f909000000' },
  /**
   * After client 11 typed "a": a 2-character item of client 11 at clock 0 whose parent
   * does not exist. Clock 0 is known, so Yjs parks the rest (clock 1) as pending; the
   * room's state update carries that pending slice with "a" as its origin, so every
   * fresh client shows "a\0" while the room holds "a" (found with STATEWEAVE_FUZZ_SEED=1).
   */
  overlappingPending: {
    base: ['01010b0004010474657874016100'],
    update: '01010b000400000002000000',
  },
  /**
   * An item whose origin's client id is a 9-byte varint (about 2^55): lib0 reads it
   * once, imprecisely, Yjs parks the item as pending, and every later encoding of
   * the document throws "Integer out of Range" (found with STATEWEAVE_FUZZ_SEED=775294).
   */
  idOutOfRange: {
    base: [],
    update:
      '0104ffffffff0700080105617272617901750477007b8000000000000001797e87ffffffffffffff4f000301700700ffffffff0701060400ffffffff0702017800',
  },
} as const;

const roomForRepro = async (): Promise<Room> => {
  const room = new Room('repro', { ...(await freshRoomOptions()), maxDocBytes: 1 << 24 });
  await room.load();
  return room;
};

/** The room refuses `update` with a StateweaveError and is byte-identical afterwards. */
const expectCleanRefusal = async (
  room: Room,
  update: Uint8Array,
  codes: readonly string[],
): Promise<void> => {
  const before = {
    state: hex(Y.encodeStateAsUpdate(room.doc)),
    sv: hex(Y.encodeStateVector(room.doc)),
  };
  let thrown: unknown;
  try {
    await room.applyUpdate(update, ORIGIN);
  } catch (err) {
    thrown = err;
  }
  assert.ok(
    thrown instanceof StateweaveError && codes.includes(thrown.code),
    `expected ${codes.join(' or ')}, got ${String(thrown)}`,
  );
  let after;
  try {
    after = { state: hex(Y.encodeStateAsUpdate(room.doc)), sv: hex(Y.encodeStateVector(room.doc)) };
  } catch (err) {
    assert.fail(`the document can no longer be encoded: ${String(err)}`);
  }
  assert.deepEqual(after, before, 'the document is byte-identical');
};

// ================================================================ the worker entry

if (!isMainThread && (workerData as Partial<WorkerJob> | null)?.fuzzSuite) {
  const job = workerData as WorkerJob;
  const suite = SUITES[job.fuzzSuite];
  if (!suite) throw new Error(`unknown fuzz suite ${job.fuzzSuite}`);
  parentPort!.postMessage(await suite(job));
}

// ================================================================ the tests (main thread)

/** Runs a suite in a watched worker and fails with its report. */
const runSuite = async (
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

if (isMainThread) {
  describe('fuzz: frame decoder', () => {
    it('returns a message or throws ProtocolError for any bytes, quickly, reading only inside the frame', async (t) => {
      await runSuite(t, 'frames', 0xf4a3e, 6000);
    });
  });

  describe('fuzz: document names', () => {
    it('accepts a name unchanged only when it is safe, else throws INVALID_DOC_NAME', async (t) => {
      await runSuite(t, 'names', 0x4a3e5, 6000);
    });
  });

  describe('fuzz: the update path of a Room', () => {
    it('refuses a mutated update with INVALID_UPDATE or DOC_TOO_LARGE and no trace, or applies it as Yjs does', async (t) => {
      await runSuite(t, 'updates-strict', 0x0bd47e, 800);
    });
    it('stays usable after any mutated update: later updates apply, fresh clients and the store agree', async (t) => {
      await runSuite(t, 'updates-usable', 0x05ab1e, 800);
    });
    it('refuses a mutated awareness update with INVALID_FRAME (or FORBIDDEN) and no trace, or applies it', async (t) => {
      await runSuite(t, 'awareness', 0xa3a7e, 1500);
    });
  });

  describe('fuzz: hostile WebSocket traffic against a real node', () => {
    const SERIAL_DOC = 'fuzz/serial';
    const CONCURRENT_DOC = 'fuzz/concurrent';
    const seed = fuzzSeed(0x0e7f);
    let dir: Awaited<ReturnType<typeof tempDir>>;
    let node: ChildNode;
    let serial: SerialRun;
    let concurrent: ConcurrentRun;

    before(async () => {
      dir = await tempDir();
      node = await spawnNode(dir.path, ['--max-frame-bytes', String(NET_MAX_FRAME_BYTES)]);
      serial = await serialTraffic(node.wsUrl, SERIAL_DOC, seed, 300, 12);
      concurrent = await concurrentTraffic(node.wsUrl, CONCURRENT_DOC, seed, 24);
      console.log(
        `websocket traffic (seed ${seed}): serial ${serial.frames} frames over ${serial.sockets} sockets in ${serial.ms} ms, ` +
          `${serial.accepted} accepted (${serial.acceptedUpdates} updates), closes ${JSON.stringify(serial.closes)}; ` +
          `concurrent ${concurrent.frames} frames on ${concurrent.sockets} sockets in ${concurrent.ms} ms, ` +
          `${concurrent.refusedSockets} refused, ${concurrent.ignoredFrames} frames after a refusal`,
      );
    });
    after(async () => {
      await stopChild(node);
      await dir.remove();
    });

    /** Two fresh stock clients sync with the node and see each other's edits. */
    const twoClientsAgree = async (docName: string): Promise<StockClient> => {
      const a = await stockClient(node.wsUrl, docName);
      const b = await stockClient(node.wsUrl, docName);
      try {
        assert.deepEqual(
          docView(b.doc),
          docView(a.doc),
          `${docName}: two fresh clients hold the same state`,
        );
        const mark = `${docName}:${Date.now()}`;
        a.doc.getMap('check-map').set('from-a', mark);
        await waitFor(
          () => b.doc.getMap('check-map').get('from-a') === mark,
          `${docName}: b to see a`,
        );
        b.doc.getArray<string>('check-array').push([mark]);
        await waitFor(
          () => a.doc.getArray<string>('check-array').toArray().includes(mark),
          `${docName}: a to see b`,
        );
      } finally {
        b.destroy();
      }
      return a;
    };

    /** The document as a fresh stock client receives it. */
    const served = async (docName: string) => {
      const client = await stockClient(node.wsUrl, docName);
      try {
        return docView(client.doc);
      } finally {
        client.destroy();
      }
    };

    it('holds exactly the valid updates sent before each socket’s first refused frame (many sockets at once)', async () => {
      assert.ok(
        concurrent.ignoredFrames > 0 && concurrent.refusedSockets > 0,
        'the traffic had refusals with frames behind them',
      );
      assert.deepEqual(
        await served(CONCURRENT_DOC),
        clientView(Y.encodeStateAsUpdate(concurrent.reference)),
      );
    });

    // With other seeds these two can hit the bugs reproduced at the end of this file.
    it('holds exactly the updates it accepted (frames sent one at a time)', async () => {
      assert.deepEqual(serial.divergent, [], 'the node accepted nothing a plain Y.Doc refuses');
      assert.equal(serial.firstDivergence, undefined);
      assert.deepEqual(
        await served(SERIAL_DOC),
        clientView(Y.encodeStateAsUpdate(serial.reference)),
      );
    });

    it('refuses every bad frame with a close code from the table, never INTERNAL', () => {
      assert.deepEqual(serial.unexpected, []);
    });

    it('keeps serving: /healthz answers and fresh stock clients sync and see each other', async () => {
      await healthy(node);
      for (const docName of ['fuzz/fresh', CONCURRENT_DOC, SERIAL_DOC])
        (await twoClientsAgree(docName)).destroy();
      await healthy(node);
    });

    it('shuts down cleanly and, after a restart, serves exactly what it served before', async () => {
      const before = { concurrent: await served(CONCURRENT_DOC), serial: await served(SERIAL_DOC) };
      const exit = await stopChild(node);
      assert.deepEqual(
        exit,
        { code: 0, signal: null },
        `clean shutdown:\n${node
          .output()
          .split('\n')
          .filter((l) => /"level":(50|60)/.test(l))
          .join('\n')}`,
      );
      node = await spawnNode(dir.path, ['--max-frame-bytes', String(NET_MAX_FRAME_BYTES)]);
      assert.deepEqual(
        { concurrent: await served(CONCURRENT_DOC), serial: await served(SERIAL_DOC) },
        before,
      );
      (await twoClientsAgree(SERIAL_DOC)).destroy();
    });
  });

  describe('fuzz: hostile HTTP requests against a real node', () => {
    const seed = fuzzSeed(0x4771);
    let dir: Awaited<ReturnType<typeof tempDir>>;
    let node: ChildNode;
    let run: HttpRun;
    const fixed: HttpCase[] = [
      {
        method: 'POST',
        target: '/v1/docs/fixed/updates',
        headers: [],
        body: { kind: 'random', bytes: fromHex(REPRODUCTIONS.zeroLengthDelete.update) },
      },
      {
        method: 'POST',
        target: '/v1/docs/fixed/updates',
        headers: [],
        body: { kind: 'gzip-bomb' },
      },
      { method: 'POST', target: '/v1/docs/fixed/updates', headers: [], body: { kind: 'oversize' } },
      { method: 'GET', target: '/v1/docs/a/../b', headers: [], body: { kind: 'empty' } },
      { method: 'GET', target: '/v1/docs/%2e%2e/etc/passwd', headers: [], body: { kind: 'empty' } },
      { method: 'GET', target: '/v1/docs/x%00y', headers: [], body: { kind: 'empty' } },
      {
        method: 'GET',
        target: `/v1/docs/${'n'.repeat(256)}`,
        headers: [],
        body: { kind: 'empty' },
      },
      {
        method: 'GET',
        target: `/v1/docs/${'n'.repeat(12_000)}`,
        headers: [],
        body: { kind: 'empty' },
      },
      {
        method: 'POST',
        target: '/v1/docs/%zz/updates',
        headers: [],
        body: { kind: 'update', pick: 0 },
      },
    ];

    before(async () => {
      dir = await tempDir();
      node = await spawnNode(dir.path, ['--max-frame-bytes', String(NET_MAX_FRAME_BYTES)]);
      run = await httpTraffic(node, seed, 500, fixed);
      console.log(
        `http traffic (seed ${seed}): ${run.requests} requests in ${run.ms} ms (slowest ${run.maxMs} ms), statuses ${JSON.stringify(run.statuses)}`,
      );
    });
    after(async () => {
      await stopChild(node);
      await dir.remove();
    });

    it('answers every request with a 2xx or a JSON error from the table, within the time limit, and stays up', async () => {
      assert.deepEqual(run.malformed, []);
      await healthy(node);
      // And it still does its job.
      const doc = new Y.Doc();
      doc.getText('text').insert(0, 'after the storm');
      const post = await fetch(`${node.url}/v1/docs/fuzz-http/updates`, {
        method: 'POST',
        body: Y.encodeStateAsUpdate(doc),
        headers: { 'content-type': 'application/octet-stream' },
      });
      assert.equal(post.status, 200);
      const get = await fetch(`${node.url}/v1/docs/fuzz-http`);
      assert.equal(get.status, 200);
      assert.deepEqual(((await get.json()) as { text?: unknown }).text, 'after the storm');
    });

    it('never answers 5xx', () => {
      assert.deepEqual(run.serverErrors, []);
    });

    it('survives requests that break HTTP itself (answered by Node’s parser, never 5xx)', async (t) => {
      const answers: string[] = [];
      for (const [what, request] of PROTOCOL_JUNK) {
        const { response, timedOut } = await rawHttp(node.port, request, { halfClose: true });
        const answer = timedOut
          ? 'no answer (timed out)'
          : response
            ? `${response.status} ${response.headers['content-type'] ?? '(no content-type)'}`
            : 'closed without an answer';
        answers.push(`${what}: ${answer}`);
        if (response) assert.ok(response.status < 500, `${what}: status ${response.status}`);
        await healthy(node);
      }
      t.diagnostic(answers.join('; '));
      console.log(`http protocol junk: ${answers.join('; ')}`);
    });
  });

  describe('known hostile inputs (minimal reproductions found by the fuzzer)', () => {
    it(`refuses a delete set with a zero-length range with INVALID_UPDATE (${REPRODUCTIONS.zeroLengthDelete.update})`, async () => {
      const room = await roomForRepro();
      try {
        await expectCleanRefusal(room, fromHex(REPRODUCTIONS.zeroLengthDelete.update), [
          'INVALID_UPDATE',
        ]);
      } finally {
        room.destroy();
      }
    });

    it(`refuses an item whose origin lies in a GC struct with INVALID_UPDATE (${REPRODUCTIONS.originInGc.update} after ${REPRODUCTIONS.originInGc.base[0]})`, async () => {
      const room = await roomForRepro();
      try {
        // The base holds a zero-length struct itself, so the guard refuses it too;
        // either way the attack that follows must be refused cleanly.
        for (const base of REPRODUCTIONS.originInGc.base) {
          await expectCleanRefusal(room, fromHex(base), ['INVALID_UPDATE']);
        }
        await expectCleanRefusal(room, fromHex(REPRODUCTIONS.originInGc.update), [
          'INVALID_UPDATE',
        ]);
      } finally {
        room.destroy();
      }
    });

    it(`refuses an id past 2^53 with INVALID_UPDATE and the document stays encodable (${REPRODUCTIONS.idOutOfRange.update})`, async () => {
      const room = await roomForRepro();
      try {
        await expectCleanRefusal(room, fromHex(REPRODUCTIONS.idOutOfRange.update), [
          'INVALID_UPDATE',
        ]);
      } finally {
        room.destroy();
      }
    });

    it(`refuses a zero-length item without touching the document (${REPRODUCTIONS.zeroLengthItem.update})`, async () => {
      const room = await roomForRepro();
      try {
        await room.applyUpdate(
          Y.encodeStateAsUpdate(
            playScript([{ kind: 'insert-text', client: 0, at: 0, text: 'kept', bold: false }])
              .docs[0]!,
          ),
          ORIGIN,
        );
        await expectCleanRefusal(room, fromHex(REPRODUCTIONS.zeroLengthItem.update), [
          'INVALID_UPDATE',
        ]);
      } finally {
        room.destroy();
      }
    });

    it(
      `shows a fresh client what the room holds after an update that overlaps known clocks (${REPRODUCTIONS.overlappingPending.update} after ${REPRODUCTIONS.overlappingPending.base[0]})`,
      {
        todo: 'BUG: the room keeps the slice pending, but its sync step 2 (encodeStateAsUpdate merges the pending slice in) makes fresh clients integrate it: clients and node diverge',
      },
      async () => {
        const room = await roomForRepro();
        try {
          for (const base of REPRODUCTIONS.overlappingPending.base)
            await room.applyUpdate(fromHex(base), ORIGIN);
          try {
            await room.applyUpdate(fromHex(REPRODUCTIONS.overlappingPending.update), ORIGIN);
          } catch (err) {
            assert.ok(
              err instanceof StateweaveError,
              `a refusal is a StateweaveError, got ${String(err)}`,
            );
          }
          const fresh = new Y.Doc();
          Y.applyUpdate(fresh, Y.encodeStateAsUpdate(room.doc));
          assert.deepEqual(docView(fresh), docView(room.doc));
          fresh.destroy();
        } finally {
          room.destroy();
        }
      },
    );

    it('refuses deeply nested JSON content (legacy content type 2, 10 000 levels, 20 KB) without touching the document', async () => {
      const room = await roomForRepro();
      try {
        await expectCleanRefusal(room, deepJsonUpdate(10_000), ['INVALID_UPDATE']);
      } finally {
        room.destroy();
      }
    });

    it(
      // Found by this suite (RangeError from JSON.stringify in the broadcast); fixed by MAX_AWARENESS_DEPTH.
      'refuses a deeply nested awareness state (10 000 levels, 20 KB) with INVALID_FRAME, or keeps presence encodable',
      async () => {
        const room = await roomForRepro();
        try {
          const before = presenceView(room.awareness);
          try {
            room.applyAwareness(deepAwarenessUpdate(4242, 10_000), ORIGIN);
          } catch (err) {
            assert.ok(
              err instanceof StateweaveError && err.code === 'INVALID_FRAME',
              `expected INVALID_FRAME, got ${String(err)}`,
            );
            assert.equal(presenceView(room.awareness), before);
          }
          assert.doesNotThrow(
            () => room.encodeAwarenessStates(),
            'presence can still be sent to a newcomer',
          );
        } finally {
          room.destroy();
        }
      },
    );

    it('keeps every document readable as JSON: nested values (ContentAny, depth 3000-6000) are refused or readable', async () => {
      const dir = await tempDir();
      const node = await spawnNode(dir.path);
      try {
        const answers: string[] = [];
        for (let depth = 3000; depth <= 6000; depth += 100) {
          const name = `deep-${depth}`;
          const post = await fetch(`${node.url}/v1/docs/${name}/updates`, {
            method: 'POST',
            body: deepAnyUpdate(depth),
          });
          const get = await fetch(`${node.url}/v1/docs/${name}`);
          await get.arrayBuffer();
          answers.push(`${depth}: POST ${post.status}, GET ${get.status}`);
          assert.ok([200, 422].includes(post.status), answers.at(-1));
          assert.ok(get.status < 500, answers.at(-1));
        }
        await healthy(node);
      } finally {
        await stopChild(node);
        await dir.remove();
      }
    });

    it(`survives idle unload of a document that received a zero-length item over a WebSocket (frame 000213${REPRODUCTIONS.zeroLengthItem.update})`, async () => {
      const dir = await tempDir();
      const node = await spawnNode(dir.path, ['--idle-unload-ms', '200']);
      try {
        const editor = await stockClient(node.wsUrl, 'repro');
        editor.doc.getText('text').insert(0, 'kept');
        await waitFor(
          async () => (await fetch(`${node.url}/v1/docs/repro`)).status === 200,
          'the edit to be stored',
        );
        const bad = await openFuzzSocket(node.wsUrl, 'repro');
        bad.ws.send(encodeUpdate(fromHex(REPRODUCTIONS.zeroLengthItem.update)));
        await waitFor(() => bad.closedWith, 'the node to refuse the frame');
        editor.destroy();
        await new Promise((resolve) => setTimeout(resolve, 1500)); // several idle-unload periods
        await healthy(node);
        const reader = await stockClientOrNothing(node.wsUrl, 'repro');
        assert.ok(reader, 'a newcomer syncs');
        assert.equal(reader.doc.getText('text').toString(), 'kept');
        reader.destroy();
        assert.equal(bad.closedWith?.code, ERRORS.INVALID_UPDATE.close, bad.closedWith?.reason);
      } finally {
        await stopChild(node);
        await dir.remove();
      }
    });

    it(
      // Before MAX_AWARENESS_DEPTH the newcomer's greeting threw inside a promise callback: the node exited.
      'survives a newcomer while a client whose awareness state is nested 10 000 levels deep does not finish closing',
      async () => {
        const dir = await tempDir();
        const node = await spawnNode(dir.path);
        try {
          const bad = await openFuzzSocket(node.wsUrl, 'repro');
          try {
            bad.ws.send(encodeAwareness(deepAwarenessUpdate(4242, 10_000)));
            // It stops reading, so the closing handshake never completes and its presence lingers.
            (bad.ws as unknown as { _socket: Socket })._socket.pause();
            await new Promise((resolve) => setTimeout(resolve, 300));
            (await stockClientOrNothing(node.wsUrl, 'repro'))?.destroy(); // its failure shows as the node's state below
            await healthy(node);
          } finally {
            bad.ws.terminate();
          }
        } finally {
          await stopChild(node);
          await dir.remove();
        }
      },
    );
  });
}
