/**
 * How many documents one token subject may create on this node: a rate (per
 * minute, a token bucket holding one minute's worth) and a total. A document is
 * created by the first write that gives an empty document content (the room
 * decides that: hub/room.ts). Optional: with neither bound set, nothing is
 * refused and creations are only counted.
 *
 * Counted per node and in memory, since the node started: a restart or another
 * node starts from zero (docs: THREAT_MODEL.md). Subjects come from verified
 * tokens, so the map grows with the operator's subjects, not an attacker's input.
 */
import { StateweaveError } from '../errors.js';
import { createTokenBucket, type TokenBucket } from './token-bucket.js';

export interface NewDocLimits {
  /** Documents one subject may create per minute (0 or undefined: no rate bound). */
  readonly perMinute?: number;
  /** Documents one subject may create in all (0 or undefined: no total bound). */
  readonly total?: number;
  /** Told of each creation and each refusal (a metric). */
  readonly onResult?: (result: 'created' | 'refused') => void;
}

export interface NewDocGate {
  /**
   * Throws DOC_CREATION_LIMITED when `subject` may not create `doc` now;
   * otherwise counts the creation.
   */
  admit(subject: string, doc: string): void;
}

interface SubjectCount {
  created: number;
  readonly rate: TokenBucket | undefined;
}

export const createNewDocGate = (limits: NewDocLimits): NewDocGate => {
  const perMinute = limits.perMinute ?? 0;
  const total = limits.total ?? 0;
  const subjects = new Map<string, SubjectCount>();
  const refuse = (message: string): never => {
    limits.onResult?.('refused');
    throw new StateweaveError('DOC_CREATION_LIMITED', message);
  };
  return {
    admit(subject, doc) {
      let count = subjects.get(subject);
      if (!count) {
        const rate = perMinute > 0 ? createTokenBucket(perMinute / 60, perMinute) : undefined;
        subjects.set(subject, (count = { created: 0, rate }));
      }
      if (total > 0 && count.created >= total)
        refuse(`${subject} has created ${total} documents on this node; ${doc} is refused`);
      if (count.rate && !count.rate.take())
        refuse(`${subject} may create ${perMinute} documents per minute; ${doc} is refused`);
      count.created++;
      limits.onResult?.('created');
    },
  };
};
