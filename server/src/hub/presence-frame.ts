/**
 * Awareness frames built from entries encoded once per tick. A tick's frame and
 * every sender's frame without its own entries (presence-relay.ts) list mostly
 * the same clients; encoding each frame from the Awareness (a JSON.stringify per
 * state per frame) made a burst of n senders cost n² encodings — 22 % of the
 * node's CPU at 500 clients. Here each state is encoded at most once per tick
 * (`memo`) and a frame is the entries' bytes copied behind a header, byte for
 * byte what `encodeAwareness(encodeAwarenessUpdate(awareness, ids))` writes.
 */
import * as encoding from 'lib0/encoding';
import type { Awareness } from 'y-protocols/awareness';
import { MessageType } from '@stateweave/client/protocol';

/** One client's entry of an awareness update: client id, clock, state as JSON. */
const encodeEntry = (awareness: Awareness, id: number): Uint8Array => {
  const e = encoding.createEncoder();
  encoding.writeVarUint(e, id);
  encoding.writeVarUint(e, awareness.meta.get(id)?.clock ?? 0);
  encoding.writeVarString(e, JSON.stringify(awareness.getStates().get(id) ?? null));
  return encoding.toUint8Array(e);
};

const varUintLength = (n: number): number => {
  let length = 1;
  while (n > 0x7f) {
    n = Math.floor(n / 128);
    length++;
  }
  return length;
};

const writeVarUint = (out: Uint8Array, at: number, n: number): number => {
  while (n > 0x7f) {
    out[at++] = 0x80 | (n & 0x7f);
    n = Math.floor(n / 128);
  }
  out[at++] = n;
  return at;
};

/** The awareness frame (MessageType.Awareness) for `ids`; entries come from `memo` or are added to it. */
export const encodePresenceFrame = (
  awareness: Awareness,
  ids: readonly number[],
  memo: Map<number, Uint8Array>,
): Uint8Array => {
  const entries: Uint8Array[] = [];
  let update = varUintLength(ids.length);
  for (const id of ids) {
    let entry = memo.get(id);
    if (!entry) memo.set(id, (entry = encodeEntry(awareness, id)));
    entries.push(entry);
    update += entry.byteLength;
  }
  // One allocation of the exact size, each entry copied once.
  const out = new Uint8Array(varUintLength(MessageType.Awareness) + varUintLength(update) + update);
  let at = writeVarUint(out, 0, MessageType.Awareness);
  at = writeVarUint(out, at, update);
  at = writeVarUint(out, at, ids.length);
  for (const entry of entries) {
    out.set(entry, at);
    at += entry.byteLength;
  }
  return out;
};
