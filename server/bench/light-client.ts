/**
 * The load generator's own clients: a WebSocket that speaks each system's sync
 * protocol without a Y.Doc.
 *
 * Why: with the stock providers every client applies every update to its own Y.Doc,
 * so one generator core does four to fifty Yjs integrations per edit while the server
 * does one — the generator saturated before the servers did, and its pauses were
 * part of every system's p99. A light client costs the generator a frame decode and
 * `Y.parseUpdateMeta` (~2 µs) per received update, the same for every system.
 *
 * An edit is one `map.set(key, clock)` of the sender's own client id on root map
 * "e", encoded by hand and checked byte for byte against Yjs at load. Receivers learn
 * which edits a frame carries from the update's own (client, clock) ranges, so a
 * server that merged or re-encoded updates is still counted right.
 */
import WebSocket from 'ws';
import * as Y from 'yjs';
import * as encoding from 'lib0/encoding';
import * as decoding from 'lib0/decoding';

const SYNC = 0;
const STEP1 = 0;
const STEP2 = 1;
const UPDATE = 2;
// Hocuspocus frames start with the document name; these are its message types.
const HP_AUTH = 2;
const HP_PING = 9;
const HP_PONG = 10;
const EMPTY_UPDATE = Y.encodeStateAsUpdate(new Y.Doc());
const EMPTY_STATE_VECTOR = Y.encodeStateVector(new Y.Doc());

/** Update v1 of `map("e").set(key, clock)` by `client` at `clock`, nothing before it for that key. */
export function encodeEdit(client: number, clock: number, key: string): Uint8Array {
  const e = encoding.createEncoder();
  encoding.writeVarUint(e, 1); // clients in this update
  encoding.writeVarUint(e, 1); // structs of that client
  encoding.writeVarUint(e, client);
  encoding.writeVarUint(e, clock);
  encoding.writeUint8(e, 8 | 0x20); // ContentAny, has parentSub, no origins
  encoding.writeVarUint(e, 1); // parent is a root type, by name
  encoding.writeVarString(e, 'e');
  encoding.writeVarString(e, key);
  encoding.writeVarUint(e, 1); // one value
  encoding.writeAny(e, clock);
  encoding.writeVarUint(e, 0); // empty delete set
  return encoding.toUint8Array(e);
}

// The hand encoding must be exactly what Yjs writes, or we would benchmark a different load.
{
  const doc = new Y.Doc();
  doc.clientID = 4242;
  const updates: Uint8Array[] = [];
  doc.on('update', (u: Uint8Array) => updates.push(u));
  doc.getMap('e').set('c0:0', 0);
  doc.getMap('e').set('c0:1', 1);
  const same = (a: Uint8Array | undefined, b: Uint8Array): boolean =>
    a !== undefined && a.length === b.length && a.every((x, i) => x === b[i]);
  if (
    !same(updates[0], encodeEdit(4242, 0, 'c0:0')) ||
    !same(updates[1], encodeEdit(4242, 1, 'c0:1'))
  ) {
    throw new Error('light-client: hand-encoded edit differs from Yjs encoding');
  }
  doc.destroy();
}

function syncFrame(prefix: string | undefined, syncType: number, payload: Uint8Array): Uint8Array {
  const e = encoding.createEncoder();
  if (prefix !== undefined) encoding.writeVarString(e, prefix);
  encoding.writeVarUint(e, SYNC);
  encoding.writeVarUint(e, syncType);
  encoding.writeVarUint8Array(e, payload);
  return encoding.toUint8Array(e);
}

/** What a client needs to know of a system: its URL, its protocol, and whether it is the relay. */
export interface SystemEndpoint {
  name: string;
  url: string;
  client: 'y-websocket' | 'hocuspocus';
}

export interface LightClient {
  /** resolves at sync step 2 (or at open, through the relay) */
  ready: Promise<void>;
  send(frame: Uint8Array): void;
  /** the frame of `map("e").set(key, clock)` by `client` at `clock` */
  edit(client: number, clock: number, key: string): Uint8Array;
  close(): void;
}

/**
 * Connects one light client to `room` of `system` ({ url, client: 'y-websocket' | 'hocuspocus', name }).
 * `onUpdate(update)` gets every Yjs update the server sends (sync step 2 and updates);
 * `onFrame()`, if given, is told of every frame received (presence included).
 * Returns { ready, send(frame), edit(client, clock, key) → frame, close() }.
 */
export function connectLight(
  system: SystemEndpoint,
  room: string,
  onUpdate: (update: Uint8Array) => void,
  onFrame?: () => void,
): LightClient {
  const hocuspocus = system.client === 'hocuspocus';
  const prefix = hocuspocus ? room : undefined;
  const ws = new WebSocket(hocuspocus ? system.url : `${system.url}/${room}`);
  ws.binaryType = 'nodebuffer';
  let resolveReady: () => void = () => undefined;
  let rejectReady: (err: Error) => void = () => undefined;
  const ready = new Promise<void>((resolve, reject) => {
    resolveReady = resolve;
    rejectReady = reject;
  });
  ws.on('open', () => {
    if (hocuspocus) {
      const e = encoding.createEncoder();
      encoding.writeVarString(e, room);
      encoding.writeVarUint(e, HP_AUTH);
      encoding.writeVarUint(e, 0); // AuthMessageType.Token
      encoding.writeVarString(e, '');
      ws.send(encoding.toUint8Array(e));
    }
    ws.send(syncFrame(prefix, STEP1, EMPTY_STATE_VECTOR));
    // The relay keeps no document: nobody will answer, an open socket is ready.
    if (system.name === 'relay') resolveReady();
  });
  ws.on('error', (err) => rejectReady(err));
  ws.on('close', (code) => rejectReady(new Error(`${system.name}: closed ${code} before sync`)));
  ws.on('message', (data: Buffer) => {
    onFrame?.();
    if (hocuspocus && data.length === 1 && data[0] === HP_PING) {
      ws.send(Uint8Array.of(HP_PONG));
      return;
    }
    const d = decoding.createDecoder(data);
    if (hocuspocus) decoding.readVarString(d);
    if (decoding.readVarUint(d) !== SYNC) return; // awareness, acks, auth answers: not counted
    const syncType = decoding.readVarUint(d);
    const payload = decoding.readVarUint8Array(d);
    // Through the relay a step 1 comes from every peer; answering each would be n² frames.
    if (syncType === STEP1) {
      if (system.name !== 'relay') ws.send(syncFrame(prefix, STEP2, EMPTY_UPDATE));
    } else {
      onUpdate(payload);
      if (syncType === STEP2) resolveReady();
    }
  });
  return {
    ready,
    send: (frame) => ws.send(frame),
    edit: (client, clock, key) => syncFrame(prefix, UPDATE, encodeEdit(client, clock, key)),
    close: () => ws.terminate(),
  };
}
