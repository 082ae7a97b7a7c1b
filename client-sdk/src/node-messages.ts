/**
 * Decodes what a node sends: the y-protocols sync and awareness messages plus
 * the `saved` and `error` extensions. A message type this SDK does not know is
 * returned as `unknown` (a newer node may send more), never thrown.
 */
import * as decoding from 'lib0/decoding';
import { decodeServerExtension, MessageType, ProtocolError, SyncType } from './protocol.js';

export type NodeMessage =
  | { readonly type: 'sync-step-1'; readonly stateVector: Uint8Array }
  | { readonly type: 'sync-step-2'; readonly update: Uint8Array }
  | { readonly type: 'update'; readonly update: Uint8Array }
  | { readonly type: 'awareness'; readonly update: Uint8Array }
  | { readonly type: 'saved'; readonly seq: number }
  | { readonly type: 'error'; readonly code: string; readonly message: string }
  | { readonly type: 'unknown'; readonly messageType: number };

/** Throws `ProtocolError` for a truncated or malformed frame. */
export const decodeNodeMessage = (frame: Uint8Array): NodeMessage => {
  const extension = decodeServerExtension(frame);
  if (extension) return extension;
  const decoder = decoding.createDecoder(frame);
  try {
    const type = decoding.readVarUint(decoder);
    if (type === MessageType.Awareness)
      return { type: 'awareness', update: decoding.readVarUint8Array(decoder) };
    if (type !== MessageType.Sync) return { type: 'unknown', messageType: type };
    const syncType = decoding.readVarUint(decoder);
    const payload = decoding.readVarUint8Array(decoder);
    if (syncType === SyncType.Step1) return { type: 'sync-step-1', stateVector: payload };
    if (syncType === SyncType.Step2) return { type: 'sync-step-2', update: payload };
    if (syncType === SyncType.Update) return { type: 'update', update: payload };
    throw new ProtocolError(`unknown sync message type ${syncType}`);
  } catch (err) {
    if (err instanceof ProtocolError) throw err;
    // lib0 throws plain Errors ("Unexpected end of array").
    throw new ProtocolError(`truncated or malformed frame: ${(err as Error).message}`);
  }
};
