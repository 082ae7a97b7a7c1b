/**
 * Messages between the node and a function worker. One task at a time per
 * worker; every reply carries the task id. Errors come back as data (code +
 * message) because a thrown Error does not survive structured cloning intact.
 *
 * `prepare` and `invoke` carry batches: many invocations cost one message each
 * way, which is where a hot document's throughput comes from. An `invoke` carries
 * groups (one document batch each, of many documents): calls of many documents
 * that wait for one worker share its next message, and each group fails alone.
 */
import type { CallerAuth, Consistency, FunctionKind } from './define.js';

/** What the node learns about a definition without running its handler. */
export interface FunctionMeta {
  readonly name: string;
  readonly kind: FunctionKind;
  readonly consistency: Consistency;
  readonly timeoutMs: number | undefined;
  /** Change trigger pattern, if any. */
  readonly on: string | undefined;
  /** Schedule interval in ms, if any. */
  readonly everyMs: number | undefined;
  /** `onStable` window size in ms, if any (the trigger `on` then runs per stable window). */
  readonly stableWindowMs: number | undefined;
}

/** Code of one bundle, sent to a worker the first time it needs that version (the worker keeps it). */
export interface BundleRef {
  readonly version: string;
  /** Present when the worker has not loaded this version yet. */
  readonly code?: string;
}

/** One input to validate and route: which document does it work on? */
export interface PrepareItem {
  readonly version: string;
  readonly name: string;
  readonly input: unknown;
}

export type Prepared =
  /** `docs`: `[doc(input)]`, or `docs(input)` (not yet validated as names). */
  | { readonly ok: true; readonly input: unknown; readonly docs: readonly string[] }
  | { readonly ok: false; readonly code: WorkerFailureCode; readonly message: string };

/** A document a batch works on, and what the worker's copy lacks of it. */
export interface DocState {
  readonly name: string;
  /** true: the worker has no (valid) copy of the document; start from `diff` alone. */
  readonly reset: boolean;
  /** What the document gained since the state the worker last saw. */
  readonly diff: Uint8Array;
}

/** One document batch of an invoke message: its calls run in order on its documents. */
export interface InvokeGroup {
  /** The sandbox's time limit for this group's calls. */
  readonly timeoutMs: number;
  /** The first is `ctx.doc`. */
  readonly docs: readonly DocState[];
  /** All of one deployment version. */
  readonly calls: readonly WorkerCall[];
}

/**
 * One invocation of a batch, as the worker receives it: a FunctionCall
 * (function-call.ts) projected to what survives structured cloning. A batch works
 * on one set of documents and runs its calls in order.
 */
export interface WorkerCall {
  readonly version: string;
  readonly name: string;
  readonly input: unknown;
  readonly auth: CallerAuth;
  readonly id: string;
  readonly now: number;
  readonly kind: FunctionKind;
  /**
   * Set by the platform, never by a caller: after the handler succeeded, the
   * guest sets `key` to `value` in the root map `map` of `ctx.doc`, in the same
   * update as the handler's writes (an `onStable` window's cursor, replicated
   * with its output: stable-windows.ts). @default none
   */
  readonly stamp?: { readonly map: string; readonly key: string; readonly value: number };
}

/** Node → worker, once, before any task: the guest script and the sandboxes' limits. */
export interface WorkerInit {
  readonly type: 'init';
  /** guest-script.ts: Yjs + guest/guest.ts, evaluated in every sandbox. */
  readonly guest: string;
  readonly memoryMb: number;
  readonly maxResultBytes: number;
  /** Time limit for evaluating a bundle's top level. */
  readonly loadTimeoutMs: number;
}

/** Every task carries its time limit: the sandbox enforces it; the pool's timer is the backstop. */
export type WorkerRequest =
  | {
      readonly type: 'describe';
      readonly task: number;
      readonly timeoutMs: number;
      readonly bundle: BundleRef;
    }
  | {
      readonly type: 'prepare';
      readonly task: number;
      readonly timeoutMs: number;
      readonly bundles: readonly BundleRef[];
      readonly items: readonly PrepareItem[];
    }
  | {
      readonly type: 'invoke';
      readonly task: number;
      /** The groups' limits added up: the pool's backstop for the whole message. */
      readonly timeoutMs: number;
      readonly bundles: readonly BundleRef[];
      /** Warm keys (`version\0doc`) the worker should forget (its warm set is bounded). */
      readonly drop: readonly string[];
      /** Run one after the other; no two share a document. */
      readonly groups: readonly InvokeGroup[];
    };

export type WorkerFailureCode =
  | 'INVALID_INPUT'
  | 'FUNCTION_ERROR'
  | 'BAD_REQUEST'
  | 'FORBIDDEN'
  | 'TIMEOUT'
  | 'FUNCTION_CRASHED'
  | 'OUTPUT_TOO_LARGE';

/**
 * A refusal that never reaches a client: the worker lost a copy the pool believes
 * warm (its sandbox was recreated), so the pool re-sends the whole document.
 */
export const STALE = 'STALE';

/**
 * A refusal that never reaches a client: the group shared one entry into its
 * sandbox with other groups, and the entry failed as a whole (a timeout, a
 * crash, a malformed answer), so the pool sends the group again alone.
 */
export const ALONE = 'ALONE';

/** What the isolate's `__swInvoke` returns (guest/guest.ts): one group's answer. */
export interface GuestInvokeReply {
  readonly results: readonly string[];
  readonly updates: readonly (Uint8Array | null)[];
  readonly stateVectors: readonly Uint8Array[] | null;
  readonly failure?: { readonly code: WorkerFailureCode; readonly message: string };
}

/**
 * One group's answer. Ran: `results` (JSON text; undefined became null) of the
 * calls that succeeded, a prefix of the group; when shorter, `failure` is why the
 * next call failed, the worker dropped the group's copies, and the calls after it
 * did not run. `updates` per document: the succeeded calls' writes merged into one
 * update, or null; `stateVectors` per document: the copy's state vector
 * afterwards, null when it dropped its copies. Refused: the group did not run
 * (its sandbox failed, timed out, crashed, lost the warm copies: STALE, or an
 * entry it shared failed: ALONE).
 */
export type GroupReply =
  | ({ readonly ok: true } & GuestInvokeReply)
  | {
      readonly ok: false;
      readonly code: WorkerFailureCode | typeof STALE | typeof ALONE;
      readonly message: string;
    };

export type WorkerReply =
  | {
      readonly task: number;
      readonly ok: true;
      readonly type: 'describe';
      readonly functions: readonly FunctionMeta[];
    }
  | {
      readonly task: number;
      readonly ok: true;
      readonly type: 'prepare';
      readonly items: readonly Prepared[];
    }
  | {
      readonly task: number;
      readonly ok: true;
      readonly type: 'invoke';
      /** Per group of the request, in order. */
      readonly groups: readonly GroupReply[];
    }
  | {
      readonly task: number;
      readonly ok: false;
      readonly code: WorkerFailureCode | typeof STALE;
      readonly message: string;
    };

/** Worker → node during an invocation: `ctx.read(doc)` wants a copy of another document. */
export interface ReadRequest {
  readonly type: 'read';
  readonly task: number;
  /** Index of the group in the task. */
  readonly group: number;
  /** Index of the call in its group (whose caller's rights apply). */
  readonly call: number;
  readonly ref: number;
  readonly doc: string;
}

/** Node → worker: the answer to a ReadRequest. */
export type ReadAnswer =
  | { readonly type: 'read'; readonly ref: number; readonly ok: true; readonly state: Uint8Array }
  | {
      readonly type: 'read';
      readonly ref: number;
      readonly ok: false;
      readonly forbidden: boolean;
      readonly message: string;
    };

export type ToWorker = WorkerInit | WorkerRequest | ReadAnswer;
export type FromWorker = WorkerReply | ReadRequest;
