/**
 * Messages between the node and a function worker. One task at a time per
 * worker; every reply carries the task id. Errors come back as data (code +
 * message) because a thrown Error does not survive structured cloning intact.
 *
 * `prepare` and `invoke` carry batches: many invocations cost one message each
 * way, which is where a hot document's throughput comes from.
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
}

/** Code of one bundle, sent to a worker the first time it needs that version. */
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
  | { readonly ok: true; readonly input: unknown; readonly doc: string }
  | { readonly ok: false; readonly code: WorkerFailureCode; readonly message: string };

/** One invocation of a batch; a batch works on one document and runs its calls in order. */
export interface Call {
  readonly version: string;
  readonly name: string;
  readonly input: unknown;
  readonly auth: CallerAuth;
  readonly id: string;
  readonly now: number;
  readonly kind: FunctionKind;
}

export type WorkerRequest =
  | { readonly type: 'describe'; readonly task: number; readonly bundle: BundleRef }
  | { readonly type: 'prepare'; readonly task: number; readonly bundles: readonly BundleRef[]; readonly items: readonly PrepareItem[] }
  | {
      readonly type: 'invoke';
      readonly task: number;
      readonly bundles: readonly BundleRef[];
      readonly doc: string;
      /** true: the worker has no (valid) copy of the document; start from `diff` alone. */
      readonly reset: boolean;
      /** What the document gained since the state the worker last saw. */
      readonly diff: Uint8Array;
      /** Documents the worker should forget (its warm set is bounded). */
      readonly drop: readonly string[];
      readonly calls: readonly Call[];
    };

export type WorkerFailureCode = 'INVALID_INPUT' | 'FUNCTION_ERROR' | 'BAD_REQUEST';

export type WorkerReply =
  | { readonly task: number; readonly ok: true; readonly type: 'describe'; readonly functions: readonly FunctionMeta[] }
  | { readonly task: number; readonly ok: true; readonly type: 'prepare'; readonly items: readonly Prepared[] }
  | {
      readonly task: number;
      readonly ok: true;
      readonly type: 'invoke';
      /**
       * Results (JSON text; undefined became null) of the calls that succeeded: a
       * prefix of the batch. When shorter than the batch, `failure` is why the next
       * call failed, the worker dropped its copy, and the calls after it did not run.
       */
      readonly results: readonly string[];
      /** The succeeded calls' writes merged into one update; null when they wrote nothing. */
      readonly update: Uint8Array | null;
      /** The worker copy's state vector afterwards; null when it dropped the copy. */
      readonly stateVector: Uint8Array | null;
      readonly failure?: { readonly code: WorkerFailureCode; readonly message: string };
    }
  | { readonly task: number; readonly ok: false; readonly code: WorkerFailureCode; readonly message: string };
