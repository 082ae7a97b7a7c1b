#!/usr/bin/env node
/**
 * One client process of the idle-memory bench (idle.ts): opens `count` WebSockets
 * to a system, each doing what a stock provider does on connect and then nothing —
 * sync step 1, the answer to the server's step 1, and one presence state `{}` (as
 * `WebsocketProvider` / `HocuspocusProvider` send their initial awareness) — and
 * holds them open until told to close (stdin ends or SIGTERM); with `renewMs` the
 * presence is renewed that often, as a stock provider's Awareness does (every 15 s).
 *
 *   node idle-clients.js <json>   {url, client: 'y-websocket'|'hocuspocus', localAddress,
 *                                   rooms: [names], clientIdBase, editors, renewMs}
 *
 * The first `editors` sockets also write one small edit (a map entry), so every
 * document holds a little content, not nothing.
 *
 * Prints `READY <n>` once every socket is synced, `FAIL <message>` if not within 300 s.
 * Connections are opened 50 at a time; the first failure ends the process.
 */
import WebSocket from 'ws';
import * as Y from 'yjs';
import * as encoding from 'lib0/encoding';
import * as decoding from 'lib0/decoding';
import { encodeEdit } from './light-client.js';
import { errorMessage } from './wait.js';

/** The process's one argument, as JSON. */
export interface IdleClientsSpec {
  url: string;
  client: 'y-websocket' | 'hocuspocus';
  localAddress: string;
  rooms: string[];
  clientIdBase: number;
  /** the first `editors` sockets write one small edit */
  editors: number;
  /** presence renewal period, 0 for none */
  renewMs?: number;
}

const spec = JSON.parse(process.argv[2] ?? '{}') as IdleClientsSpec;
const hocuspocus = spec.client === 'hocuspocus';
const EMPTY_UPDATE = Y.encodeStateAsUpdate(new Y.Doc());
const EMPTY_STATE_VECTOR = Y.encodeStateVector(new Y.Doc());
const BATCH = 50;
const TIMEOUT_MS = 300_000;

function frame(room: string, write: (e: encoding.Encoder) => void): Uint8Array {
  const e = encoding.createEncoder();
  if (hocuspocus) encoding.writeVarString(e, room);
  write(e);
  return encoding.toUint8Array(e);
}
const sync = (room: string, type: number, payload: Uint8Array): Uint8Array =>
  frame(room, (e) => {
    encoding.writeVarUint(e, 0);
    encoding.writeVarUint(e, type);
    encoding.writeVarUint8Array(e, payload);
  });
const awareness = (room: string, clientId: number, clock = 0): Uint8Array =>
  frame(room, (e) => {
    const u = encoding.createEncoder();
    encoding.writeVarUint(u, 1);
    encoding.writeVarUint(u, clientId);
    encoding.writeVarUint(u, clock);
    encoding.writeVarString(u, '{}');
    encoding.writeVarUint(e, 1);
    encoding.writeVarUint8Array(e, encoding.toUint8Array(u));
  });

const sockets: WebSocket[] = [];
const rooms: string[] = [];
const clientIds: number[] = [];
// A stock provider's Awareness renews its state every 15 s (servers drop a state not
// renewed within 30 s). Off by default (`renewMs` 0): the unit is an idle connection,
// and 10,000 renewing clients are 667 presence updates a second. Hocuspocus closes a
// socket that sent nothing for 60 s, so idle.ts renews every 30 s for it alone.
const RENEW_MS = spec.renewMs ?? 0;
const clocks: number[] = [];
let renewAt = 0;
const renewer = setInterval(() => {
  if (RENEW_MS <= 0) return;
  const n = sockets.length;
  const share = Math.ceil(n / (RENEW_MS / 1000));
  for (let k = 0; k < share && n > 0; k++, renewAt = (renewAt + 1) % n) {
    const ws = sockets[renewAt];
    const room = rooms[renewAt];
    const clientId = clientIds[renewAt];
    if (ws?.readyState !== WebSocket.OPEN || room === undefined || clientId === undefined) continue;
    const clock = (clocks[renewAt] ?? 0) + 1;
    clocks[renewAt] = clock;
    ws.send(awareness(room, clientId, clock));
  }
}, 1000);
function open(room: string, clientId: number, edits: boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(hocuspocus ? spec.url : `${spec.url}/${room}`, {
      localAddress: spec.localAddress,
      perMessageDeflate: false,
    });
    sockets.push(ws);
    rooms.push(room);
    clientIds.push(clientId);
    let synced = false;
    ws.binaryType = 'nodebuffer';
    ws.on('open', () => {
      if (hocuspocus)
        ws.send(
          frame(room, (e) => {
            encoding.writeVarUint(e, 2); // Auth
            encoding.writeVarUint(e, 0); // Token
            encoding.writeVarString(e, '');
          }),
        );
      ws.send(sync(room, 0, EMPTY_STATE_VECTOR));
      ws.send(awareness(room, clientId));
      if (edits) ws.send(sync(room, 2, encodeEdit(clientId, 0, `note by ${clientId}`)));
    });
    ws.on('error', reject);
    ws.on('close', (code) => {
      if (!synced) reject(new Error(`closed ${code} before sync`));
      else if (!closing) console.log(`FAIL closed ${code} while idle`);
    });
    ws.on('message', (data: Buffer) => {
      if (hocuspocus && data.length === 1 && data[0] === 9) {
        ws.send(Uint8Array.of(10));
        return;
      }
      const d = decoding.createDecoder(data);
      if (hocuspocus) decoding.readVarString(d);
      if (decoding.readVarUint(d) !== 0) return;
      const type = decoding.readVarUint(d);
      if (type === 0) ws.send(sync(room, 1, EMPTY_UPDATE));
      else if (type === 1 && !synced) {
        synced = true;
        resolve();
      }
    });
  });
}

let closing = false;
const shutdown = () => {
  closing = true;
  clearInterval(renewer);
  for (const ws of sockets) ws.terminate();
  setTimeout(() => process.exit(0), 200);
};
process.on('SIGTERM', shutdown);
process.stdin.on('end', shutdown);
process.stdin.resume();

const deadline = setTimeout(() => {
  console.log(`FAIL ${sockets.length} opened, not all synced within ${TIMEOUT_MS} ms`);
  process.exit(1);
}, TIMEOUT_MS);
try {
  for (let i = 0; i < spec.rooms.length; i += BATCH) {
    const batch = spec.rooms.slice(i, i + BATCH);
    await Promise.all(
      batch.map((room, j) => open(room, spec.clientIdBase + i + j, i + j < spec.editors)),
    );
  }
  clearTimeout(deadline);
  console.log(`READY ${sockets.length}`);
} catch (err) {
  console.log(`FAIL ${errorMessage(err)}`);
  process.exit(1);
}
