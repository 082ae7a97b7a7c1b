/**
 * The bytes of the history's small records, shared by the stores:
 *
 *   change index  varString doc · float64 time · varUint n · n × varString writer
 *   checkpoint    float64 time · varUint bytes · varString label ('' = none) · varString by
 *
 * A leading version byte leaves room for a later layout.
 */
import * as decoding from 'lib0/decoding';
import * as encoding from 'lib0/encoding';
import type { DocName } from '../doc-name.js';
import type { Checkpoint } from './store.js';
import { storedDocName } from './stored-name.js';

const VERSION = 1;
/** The version byte of a change-index line that records a deletion (same fields). */
const DELETION = 2;

export interface ChangeMeta {
  readonly doc: DocName;
  readonly time: number;
  readonly writers: readonly string[];
  /** The line records the document's deletion, not a log entry. */
  readonly deleted?: boolean;
}

export const encodeChangeMeta = (meta: ChangeMeta): Uint8Array => {
  const e = encoding.createEncoder();
  encoding.writeUint8(e, meta.deleted ? DELETION : VERSION);
  encoding.writeVarString(e, meta.doc);
  encoding.writeFloat64(e, meta.time);
  encoding.writeVarUint(e, meta.writers.length);
  for (const w of meta.writers) encoding.writeVarString(e, w);
  return encoding.toUint8Array(e);
};

export const decodeChangeMeta = (bytes: Uint8Array): ChangeMeta => {
  const d = decoding.createDecoder(bytes);
  const version = decoding.readUint8(d);
  const doc = storedDocName(decoding.readVarString(d));
  const time = decoding.readFloat64(d);
  const writers: string[] = [];
  for (let n = decoding.readVarUint(d); n > 0; n--) writers.push(decoding.readVarString(d));
  return version === DELETION ? { doc, time, writers, deleted: true } : { doc, time, writers };
};

export const encodeCheckpoint = (checkpoint: Checkpoint): Uint8Array => {
  const e = encoding.createEncoder();
  encoding.writeUint8(e, VERSION);
  encoding.writeFloat64(e, checkpoint.time);
  encoding.writeVarUint(e, checkpoint.bytes);
  encoding.writeVarString(e, checkpoint.label ?? '');
  encoding.writeVarString(e, checkpoint.by ?? '');
  return encoding.toUint8Array(e);
};

export const decodeCheckpoint = (seq: number, bytes: Uint8Array): Checkpoint => {
  const d = decoding.createDecoder(bytes);
  decoding.readUint8(d);
  const time = decoding.readFloat64(d);
  const size = decoding.readVarUint(d);
  const label = decoding.readVarString(d);
  const by = decoding.readVarString(d);
  return {
    seq,
    time,
    bytes: size,
    ...(label !== '' ? { label } : {}),
    ...(by !== '' ? { by } : {}),
  };
};

/** Times never go backwards within one store, so "the state at time T" is a prefix of the log. */
export const createClock = (): (() => number) => {
  let last = 0;
  return () => (last = Math.max(last, Date.now()));
};

/**
 * A document's summary (the document list): varUint bytes · float64 time of
 * its last stored change (0: unknown, a document stored before summaries were kept
 * and compacted since).
 */
export interface DocSummaryValue {
  readonly bytes: number;
  readonly time: number;
}

export const encodeDocSummary = (summary: DocSummaryValue): Uint8Array => {
  const e = encoding.createEncoder();
  encoding.writeUint8(e, VERSION);
  encoding.writeVarUint(e, summary.bytes);
  encoding.writeFloat64(e, summary.time);
  return encoding.toUint8Array(e);
};

export const decodeDocSummary = (bytes: Uint8Array): DocSummaryValue => {
  const d = decoding.createDecoder(bytes);
  decoding.readUint8(d);
  return { bytes: decoding.readVarUint(d), time: decoding.readFloat64(d) };
};
