/**
 * Directed frames of the channel replicator (node to node over a backplane).
 * Pure encode/decode, no I/O. Bytes: varuint kind, varstring document name,
 * then for `ask` and `message` a varUint8Array holding one standard
 * y-protocols message.
 *
 * - `ask` (0): a sync step 1 that asks for a whole exchange: the receiver holds
 *   the document open for the sender, answers step 2 and sends its own step 1
 *   back (as a `message`). Only an ask is answered with a step 1, so two nodes
 *   never bounce step 1s between them.
 * - `message` (1): anything else (step 1 in answer, step 2, update).
 * - `leave` (2): the sender no longer needs the receiver to hold the document.
 */
import * as decoding from 'lib0/decoding';
import * as encoding from 'lib0/encoding';
import { ProtocolError } from '@stateweave/client/protocol';
import { decodedDocName, type DocName } from '../doc-name.js';

export type ChannelFrame =
  | { readonly type: 'ask'; readonly doc: DocName; readonly message: Uint8Array }
  | { readonly type: 'message'; readonly doc: DocName; readonly message: Uint8Array }
  | { readonly type: 'leave'; readonly doc: DocName };

const KIND = { ask: 0, message: 1, leave: 2 } as const;

export const encodeChannelFrame = (frame: ChannelFrame): Uint8Array => {
  const e = encoding.createEncoder();
  encoding.writeVarUint(e, KIND[frame.type]);
  encoding.writeVarString(e, frame.doc);
  if (frame.type !== 'leave') encoding.writeVarUint8Array(e, frame.message);
  return encoding.toUint8Array(e);
};

/** Decodes one frame; throws ProtocolError on anything else, a name that fails the rule too. */
export const decodeChannelFrame = (bytes: Uint8Array): ChannelFrame => {
  const d = decoding.createDecoder(bytes);
  let frame: ChannelFrame;
  try {
    const kind = decoding.readVarUint(d);
    const doc = decodedDocName(decoding.readVarString(d));
    if (kind === KIND.leave) frame = { type: 'leave', doc };
    else if (kind === KIND.ask)
      frame = { type: 'ask', doc, message: decoding.readVarUint8Array(d) };
    else if (kind === KIND.message)
      frame = { type: 'message', doc, message: decoding.readVarUint8Array(d) };
    else throw new ProtocolError(`unknown channel frame kind ${kind}`);
  } catch (err) {
    if (err instanceof ProtocolError) throw err;
    throw new ProtocolError(`truncated or malformed channel frame: ${(err as Error).message}`);
  }
  if (decoding.hasContent(d)) throw new ProtocolError('trailing bytes after channel frame');
  return frame;
};
