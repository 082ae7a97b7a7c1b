/**
 * Frames on a peer link (PROTOCOL.md, "Peer links"). One link carries many
 * documents: every frame names its document, and wraps an unchanged standard
 * message (sync step 1/2/update, awareness), so replication speaks the same Yjs
 * sync protocol as clients. Pure encode/decode, no I/O.
 */
import * as decoding from 'lib0/decoding';
import * as encoding from 'lib0/encoding';
import { MessageType, ProtocolError } from '@stateweave/client/protocol';

export type PeerFrame =
  | { readonly type: 'doc'; readonly doc: string; readonly message: Uint8Array }
  | { readonly type: 'leave'; readonly doc: string };

export const encodePeerDoc = (doc: string, message: Uint8Array): Uint8Array => {
  const e = encoding.createEncoder();
  encoding.writeVarUint(e, MessageType.PeerDoc);
  encoding.writeVarString(e, doc);
  encoding.writeVarUint8Array(e, message);
  return encoding.toUint8Array(e);
};

export const encodePeerLeave = (doc: string): Uint8Array => {
  const e = encoding.createEncoder();
  encoding.writeVarUint(e, MessageType.PeerLeave);
  encoding.writeVarString(e, doc);
  return encoding.toUint8Array(e);
};

/** Decodes one peer frame; throws ProtocolError on anything else. */
export const decodePeerFrame = (frame: Uint8Array): PeerFrame => {
  const d = decoding.createDecoder(frame);
  let result: PeerFrame;
  try {
    const type = decoding.readVarUint(d);
    if (type === MessageType.PeerDoc)
      result = {
        type: 'doc',
        doc: decoding.readVarString(d),
        message: decoding.readVarUint8Array(d),
      };
    else if (type === MessageType.PeerLeave)
      result = { type: 'leave', doc: decoding.readVarString(d) };
    else throw new ProtocolError(`unknown peer message type ${type}`);
  } catch (err) {
    if (err instanceof ProtocolError) throw err;
    throw new ProtocolError(`truncated or malformed peer frame: ${(err as Error).message}`);
  }
  if (decoding.hasContent(d)) throw new ProtocolError('trailing bytes after peer frame');
  return result;
};
