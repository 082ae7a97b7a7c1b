/**
 * The presence report a node sends every other node under `--placement
 * presence` (presence-placement.ts). Pure encode/decode, no I/O. It travels on
 * the directed channel between nodes (a peer link or a backplane's `send`),
 * beside the replicator's frames (kinds 0–2, peer frames 110–111) and RPC
 * frames (8–10), and takes kind 12, so one byte tells it apart.
 *
 * Bytes: varuint 12, varstring region of the sender ('' when it has none),
 * varuint entry count, then per entry varstring document name, varuint active
 * users on the sender. A report is the sender's whole view: a document not in
 * it has no active user there.
 */
import { decodedDocName, type DocName } from '../doc-name.js';
import * as decoding from 'lib0/decoding';
import * as encoding from 'lib0/encoding';
import { ProtocolError } from '@stateweave/client/protocol';

const KIND = 12;

export interface PresenceReport {
  readonly region: string;
  /** Document name → active users on the sender (only documents with some). */
  readonly users: ReadonlyMap<DocName, number>;
}

/** True when `bytes` is a presence report (not a replicator or RPC frame). */
export const isPresenceFrame = (bytes: Uint8Array): boolean => bytes[0] === KIND;

export const encodePresenceReport = (report: PresenceReport): Uint8Array => {
  const e = encoding.createEncoder();
  encoding.writeVarUint(e, KIND);
  encoding.writeVarString(e, report.region);
  encoding.writeVarUint(e, report.users.size);
  for (const [doc, n] of report.users) {
    encoding.writeVarString(e, doc);
    encoding.writeVarUint(e, n);
  }
  return encoding.toUint8Array(e);
};

/** Decodes one report; throws ProtocolError on anything else. */
export const decodePresenceReport = (bytes: Uint8Array): PresenceReport => {
  const d = decoding.createDecoder(bytes);
  const users = new Map<DocName, number>();
  let region: string;
  try {
    if (decoding.readVarUint(d) !== KIND) throw new ProtocolError('not a presence report');
    region = decoding.readVarString(d);
    const entries = decoding.readVarUint(d);
    for (let i = 0; i < entries; i++)
      users.set(decodedDocName(decoding.readVarString(d)), decoding.readVarUint(d));
  } catch (err) {
    if (err instanceof ProtocolError) throw err;
    throw new ProtocolError(`truncated or malformed presence report: ${(err as Error).message}`);
  }
  if (decoding.hasContent(d)) throw new ProtocolError('trailing bytes after presence report');
  return { region, users };
};
