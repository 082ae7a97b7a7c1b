/**
 * A room's update frame (y-websocket's Sync/Update message: type 0, sync type 2,
 * the update with its varint length), written straight into one Buffer. Why not
 * the protocol module's `encodeUpdate`: it goes through a lib0 Encoder (an object
 * and a 100-byte first chunk, grown and then copied out for larger updates), and
 * every change of a room is framed once; same bytes (test/whole-update.test.ts).
 */
import { MessageType, SyncType } from '@stateweave/client/protocol';

const varUintLength = (n: number): number => {
  let length = 1;
  while (n > 0x7f) {
    n = Math.floor(n / 0x80);
    length++;
  }
  return length;
};

export const updateFrame = (update: Uint8Array): Buffer => {
  const length = update.byteLength;
  const frame = Buffer.allocUnsafeSlow(2 + varUintLength(length) + length);
  frame[0] = MessageType.Sync;
  frame[1] = SyncType.Update;
  let at = 2;
  let n = length;
  while (n > 0x7f) {
    frame[at++] = 0x80 | (n & 0x7f);
    n = Math.floor(n / 0x80);
  }
  frame[at++] = n;
  frame.set(update, at);
  return frame;
};
