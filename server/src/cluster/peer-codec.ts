/**
 * The mesh backplane's own frames on a peer link (PROTOCOL.md, "Peer links").
 * One link carries many documents: channel frames name their document and wrap
 * an unchanged standard message (sync step 1/2/update, awareness), so
 * replication speaks the same Yjs sync protocol as clients. Everything else on
 * a link is a directed frame of the layer above (channel-codec.ts, rpc-codec.ts),
 * told apart by its first byte (below 110). Pure encode/decode, no I/O.
 */
import { assertNever } from '../assert-never.js';
import { decodedDocName, type DocName } from '../doc-name.js';
import * as decoding from 'lib0/decoding';
import * as encoding from 'lib0/encoding';
import { MessageType, ProtocolError } from '@stateweave/client/protocol';

export type PeerFrame =
  /** A channel message the sender relays for a node the receiver has no link to. */
  | { readonly type: 'doc'; readonly doc: DocName; readonly message: Uint8Array }
  /** The sender no longer subscribes to the document. */
  | { readonly type: 'leave'; readonly doc: DocName }
  /** A channel message the sender published, numbered in the sender's sequence. */
  | {
      readonly type: 'publish';
      readonly doc: DocName;
      readonly seq: number;
      readonly message: Uint8Array;
    }
  /** The sender subscribes; it read the receiver's messages of `doc` up to `after`. */
  | { readonly type: 'subscribe'; readonly doc: DocName; readonly after: number }
  /** The nodes the sender has a link up to now (who needs a relay). */
  | { readonly type: 'links'; readonly nodes: readonly string[] }
  /** A cluster-wide record, the newest write (by `writtenAt`, then `writer`) wins. */
  | {
      readonly type: 'record';
      readonly name: string;
      readonly writtenAt: number;
      readonly writer: string;
      readonly value: Uint8Array;
    }
  /** A directed frame of the layer above that begins with a byte of this codec. */
  | { readonly type: 'direct'; readonly frame: Uint8Array };

/** The first bytes this codec owns: a frame starting below them is a directed frame. */
export const PEER_FRAME_MIN = MessageType.PeerDoc;
const PEER_FRAME_MAX = MessageType.PeerDoc + 9;

const TYPE = {
  doc: MessageType.PeerDoc,
  leave: MessageType.PeerLeave,
  publish: MessageType.PeerDoc + 2,
  subscribe: MessageType.PeerDoc + 3,
  links: MessageType.PeerDoc + 4,
  record: MessageType.PeerDoc + 5,
  direct: MessageType.PeerDoc + 6,
} as const;

/** True when `frame` is one of this codec's frames (not a directed frame of the layer above). */
export const isPeerFrame = (frame: Uint8Array): boolean =>
  frame[0] !== undefined && frame[0] >= PEER_FRAME_MIN && frame[0] <= PEER_FRAME_MAX;

export const encodePeerFrame = (frame: PeerFrame): Uint8Array => {
  const e = encoding.createEncoder();
  encoding.writeVarUint(e, TYPE[frame.type]);
  switch (frame.type) {
    case 'doc':
      encoding.writeVarString(e, frame.doc);
      encoding.writeVarUint8Array(e, frame.message);
      break;
    case 'leave':
      encoding.writeVarString(e, frame.doc);
      break;
    case 'publish':
      encoding.writeVarString(e, frame.doc);
      encoding.writeVarUint(e, frame.seq);
      encoding.writeVarUint8Array(e, frame.message);
      break;
    case 'subscribe':
      encoding.writeVarString(e, frame.doc);
      encoding.writeVarUint(e, frame.after);
      break;
    case 'links':
      encoding.writeVarUint(e, frame.nodes.length);
      for (const node of frame.nodes) encoding.writeVarString(e, node);
      break;
    case 'record':
      encoding.writeVarString(e, frame.name);
      encoding.writeVarUint(e, frame.writtenAt);
      encoding.writeVarString(e, frame.writer);
      encoding.writeVarUint8Array(e, frame.value);
      break;
    case 'direct':
      encoding.writeVarUint8Array(e, frame.frame);
      break;
    default:
      return assertNever(frame, 'peer frame');
  }
  return encoding.toUint8Array(e);
};

export const encodePeerDoc = (doc: DocName, message: Uint8Array): Uint8Array =>
  encodePeerFrame({ type: 'doc', doc, message });

export const encodePeerLeave = (doc: DocName): Uint8Array =>
  encodePeerFrame({ type: 'leave', doc });

const MAX_LINKS = 1024;

const read = (d: decoding.Decoder, type: number): PeerFrame => {
  switch (type) {
    case TYPE.doc:
      return {
        type: 'doc',
        doc: decodedDocName(decoding.readVarString(d)),
        message: decoding.readVarUint8Array(d),
      };
    case TYPE.leave:
      return { type: 'leave', doc: decodedDocName(decoding.readVarString(d)) };
    case TYPE.publish:
      return {
        type: 'publish',
        doc: decodedDocName(decoding.readVarString(d)),
        seq: decoding.readVarUint(d),
        message: decoding.readVarUint8Array(d),
      };
    case TYPE.subscribe:
      return {
        type: 'subscribe',
        doc: decodedDocName(decoding.readVarString(d)),
        after: decoding.readVarUint(d),
      };
    case TYPE.links: {
      const count = decoding.readVarUint(d);
      if (count > MAX_LINKS) throw new ProtocolError(`too many links (${count})`);
      return {
        type: 'links',
        nodes: Array.from({ length: count }, () => decoding.readVarString(d)),
      };
    }
    case TYPE.record:
      return {
        type: 'record',
        name: decoding.readVarString(d),
        writtenAt: decoding.readVarUint(d),
        writer: decoding.readVarString(d),
        value: decoding.readVarUint8Array(d),
      };
    case TYPE.direct:
      return { type: 'direct', frame: decoding.readVarUint8Array(d) };
    default:
      throw new ProtocolError(`unknown peer message type ${type}`);
  }
};

/** Decodes one peer frame; throws ProtocolError on anything else. */
export const decodePeerFrame = (frame: Uint8Array): PeerFrame => {
  const d = decoding.createDecoder(frame);
  let result: PeerFrame;
  try {
    result = read(d, decoding.readVarUint(d));
  } catch (err) {
    if (err instanceof ProtocolError) throw err;
    throw new ProtocolError(`truncated or malformed peer frame: ${(err as Error).message}`);
  }
  if (decoding.hasContent(d)) throw new ProtocolError('trailing bytes after peer frame');
  return result;
};
