/**
 * A joining client that does not keep what it receives: a raw TCP socket that
 * does the WebSocket handshake itself, sends sync step 1 with an empty state
 * vector, and parses the server's frames as a stream — it keeps the first bytes
 * of each message (enough to see that it is a sync step 2) and counts the rest
 * without buffering them. Why: 150 `ws` clients joining a 20 MB document would
 * hold 3 GB in the load generator; these hold a few KB each.
 *
 * `rawJoin({ port, room, hocuspocus, localAddress })` resolves with
 * { ms, step2Bytes } once a whole sync step 2 has arrived (the socket is then
 * closed), or rejects on close, error or `timeoutMs`.
 */
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import * as encoding from 'lib0/encoding';
import * as decoding from 'lib0/decoding';

const HEAD_KEEP = 64;
/**
 * Every socket of the process reads into this one buffer (net's `onread`): the bytes
 * are parsed before the next read, and what is kept is copied. Node's default gives
 * each read a new 64 KB buffer, and with 50 joiners of a 20 MB document per process
 * those reads and their garbage were most of the joiners' CPU — on the cores the
 * server under test runs on.
 */
const READ_BUFFER = Buffer.alloc(256 * 1024);

/** One client-to-server frame (binary, masked with a zero key: the payload bytes are unchanged). */
export function maskedFrame(payload: Uint8Array): Buffer {
  const n = payload.length;
  const header = n < 126 ? 2 : n < 65536 ? 4 : 10;
  const out = Buffer.alloc(header + 4 + n);
  out[0] = 0x82;
  if (n < 126) out[1] = 0x80 | n;
  else if (n < 65536) {
    out[1] = 0x80 | 126;
    out.writeUInt16BE(n, 2);
  } else {
    out[1] = 0x80 | 127;
    out.writeBigUInt64BE(BigInt(n), 2);
  }
  // mask key: four zero bytes (already zero)
  out.set(payload, header + 4);
  return out;
}

function syncStep1(prefix: string | undefined): Uint8Array {
  const e = encoding.createEncoder();
  if (prefix !== undefined) encoding.writeVarString(e, prefix);
  encoding.writeVarUint(e, 0); // sync
  encoding.writeVarUint(e, 0); // step 1
  encoding.writeVarUint8Array(e, Uint8Array.of(0)); // empty state vector
  return encoding.toUint8Array(e);
}

function hocuspocusAuth(room: string): Uint8Array {
  const e = encoding.createEncoder();
  encoding.writeVarString(e, room);
  encoding.writeVarUint(e, 2); // Auth
  encoding.writeVarUint(e, 0); // Token
  encoding.writeVarString(e, '');
  return encoding.toUint8Array(e);
}

/** True when the head of a message is a sync step 2 (after the Hocuspocus document name). */
function isStep2(head: Uint8Array, hocuspocus: boolean): boolean {
  try {
    const d = decoding.createDecoder(head);
    if (hocuspocus) decoding.readVarString(d);
    return decoding.readVarUint(d) === 0 && decoding.readVarUint(d) === 1;
  } catch {
    return false;
  }
}

export interface RawJoinSpec {
  port: number;
  room: string;
  hocuspocus: boolean;
  localAddress?: string;
  timeoutMs?: number;
}
export interface RawJoin {
  /** from the connect to the whole sync step 2 */
  ms: number;
  /** payload bytes received up to then */
  bytes: number;
}

export function rawJoin({
  port,
  room,
  hocuspocus,
  localAddress,
  timeoutMs = 60_000,
}: RawJoinSpec): Promise<RawJoin> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const socket = net.connect({
      host: '127.0.0.1',
      port,
      ...(localAddress ? { localAddress } : {}),
      onread: {
        buffer: READ_BUFFER,
        callback: (n) => {
          onData(READ_BUFFER.subarray(0, n));
          return true;
        },
      },
    });
    const key = randomBytes(16).toString('base64');
    const path = hocuspocus ? '/' : `/${room}`;
    let upgraded = false;
    let pending: Buffer = Buffer.alloc(0); // unparsed header bytes (and the HTTP response)
    // Current frame: payload bytes left, the message head being kept.
    let left = -1;
    let head: Buffer[] = [];
    let headLen = 0;
    let total = 0;
    let done = false;
    const timer = setTimeout(
      () => finish(new Error(`no sync step 2 within ${timeoutMs} ms`)),
      timeoutMs,
    );
    function finish(err: Error | undefined, value?: RawJoin): void {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else if (value) resolve(value);
    }
    socket.on('error', (err) => finish(err));
    socket.on('close', () => finish(new Error('closed before sync step 2')));
    socket.on('connect', () => {
      socket.write(
        `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      );
    });
    // Declared before use by the socket's onread; `chunk` is READ_BUFFER's: copy what is kept.
    function onData(chunk: Buffer): void {
      let buf: Buffer = pending.length ? Buffer.concat([pending, chunk]) : chunk;
      pending = Buffer.alloc(0);
      if (!upgraded) {
        const end = buf.indexOf('\r\n\r\n');
        if (end === -1) {
          pending = Buffer.from(buf);
          return;
        }
        const status = buf.subarray(0, buf.indexOf('\r\n')).toString();
        if (!status.includes(' 101 ')) {
          finish(new Error(`upgrade refused: ${status}`));
          return;
        }
        upgraded = true;
        if (hocuspocus) socket.write(maskedFrame(hocuspocusAuth(room)));
        socket.write(maskedFrame(syncStep1(hocuspocus ? room : undefined)));
        buf = buf.subarray(end + 4);
      }
      let at = 0;
      while (at < buf.length && !done) {
        if (left === -1) {
          // a frame header: 2, 4 or 10 bytes (server frames are not masked)
          if (buf.length - at < 2) break;
          const len7 = (buf[at + 1] ?? 0) & 0x7f;
          const size = len7 < 126 ? 2 : len7 === 126 ? 4 : 10;
          if (buf.length - at < size) break;
          const opcode = (buf[at] ?? 0) & 0x0f;
          left =
            len7 < 126
              ? len7
              : len7 === 126
                ? buf.readUInt16BE(at + 2)
                : Number(buf.readBigUInt64BE(at + 2));
          at += size;
          if (opcode === 0x8) {
            finish(new Error('closed by the server before sync step 2'));
            return;
          }
          if (opcode === 0x9) {
            // a ping: answered with an empty pong (payload skipped below)
            socket.write(Buffer.from([0x8a, 0x80, 0, 0, 0, 0]));
          }
          head = [];
          headLen = 0;
        }
        const take = Math.min(left, buf.length - at);
        if (headLen < HEAD_KEEP && take > 0) {
          const part = buf.subarray(at, at + Math.min(take, HEAD_KEEP - headLen));
          head.push(Buffer.from(part));
          headLen += part.length;
        }
        at += take;
        left -= take;
        total += take;
        if (left === 0) {
          left = -1;
          if (isStep2(Buffer.concat(head), hocuspocus)) {
            finish(undefined, { ms: performance.now() - t0, bytes: total });
            return;
          }
        }
      }
      if (at < buf.length) pending = Buffer.from(buf.subarray(at));
    }
  });
}
