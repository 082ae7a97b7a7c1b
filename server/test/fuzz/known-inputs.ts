/** Known hostile inputs: minimal reproductions the fuzzer found, and how a room must refuse them. */
import { docName } from '../helpers/doc-name.js';
import assert from 'node:assert/strict';
import * as Y from 'yjs';
import * as encoding from 'lib0/encoding';
import { StateweaveError } from '../../src/errors.js';
import { Room } from '../../src/hub/room.js';
import { stockClient, type StockClient } from '../helpers/clients.js';
import { hex } from '../helpers/fuzz.js';
import { ORIGIN, freshRoomOptions } from './in-process.js';

// ================================================================ known hostile inputs

/** A V1 update with one legacy JSON item (content ref 2) nested `depth` arrays deep. */
export const deepJsonUpdate = (depth: number): Uint8Array => {
  const e = encoding.createEncoder();
  for (const n of [1, 1, 7, 0, 2, 1]) encoding.writeVarUint(e, n); // 1 client, 1 struct, client 7, clock 0, info, parent is a root key
  encoding.writeVarString(e, 'arr');
  encoding.writeVarUint(e, 1);
  encoding.writeVarString(e, '['.repeat(depth) + ']'.repeat(depth));
  encoding.writeVarUint(e, 0); // empty delete set
  return encoding.toUint8Array(e);
};

/** A V1 update with one ContentAny item (content ref 8): `depth` nested one-element arrays around null. */
export const deepAnyUpdate = (depth: number): Uint8Array => {
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
export const deepAwarenessUpdate = (clientId: number, depth: number): Uint8Array => {
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
export const stockClientOrNothing = async (
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

export const fromHex = (text: string): Uint8Array => Uint8Array.from(Buffer.from(text, 'hex'));

/** Minimal reproductions found by the fuzzer, shrunk by hand. */
export const REPRODUCTIONS = {
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

export const roomForRepro = async (): Promise<Room> => {
  const room = new Room(docName('repro'), { ...(await freshRoomOptions()), maxDocBytes: 1 << 24 });
  await room.load();
  return room;
};

/** The room refuses `update` with a StateweaveError and is byte-identical afterwards. */
export const expectCleanRefusal = async (
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
