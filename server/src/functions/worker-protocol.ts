/**
 * Messages between the node and a function worker. One task at a time per
 * worker; every reply carries the task id. Errors come back as data (code +
 * message) because a thrown Error does not survive structured cloning intact.
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

export type WorkerRequest =
  | { readonly type: 'describe'; readonly task: number; readonly bundle: BundleRef }
  | { readonly type: 'prepare'; readonly task: number; readonly bundle: BundleRef; readonly name: string; readonly input: unknown }
  | {
      readonly type: 'invoke';
      readonly task: number;
      readonly bundle: BundleRef;
      readonly name: string;
      readonly doc: string;
      /** true: the worker has no (valid) copy of the document; start from `diff` alone. */
      readonly reset: boolean;
      /** What the document gained since the state the worker last saw. */
      readonly diff: Uint8Array;
      /** Documents the worker should forget (its warm set is bounded). */
      readonly drop: readonly string[];
      readonly input: unknown;
      readonly auth: CallerAuth;
      readonly id: string;
      readonly now: number;
      readonly kind: FunctionKind;
    };

export type WorkerFailureCode = 'INVALID_INPUT' | 'FUNCTION_ERROR' | 'BAD_REQUEST';

export type WorkerReply =
  | { readonly task: number; readonly ok: true; readonly type: 'describe'; readonly functions: readonly FunctionMeta[] }
  | { readonly task: number; readonly ok: true; readonly type: 'prepare'; readonly input: unknown; readonly doc: string }
  | {
      readonly task: number;
      readonly ok: true;
      readonly type: 'invoke';
      /** The result as JSON text (undefined results become null). */
      readonly result: string;
      /** The handler's writes merged into one update; null when it wrote nothing. */
      readonly update: Uint8Array | null;
      /** The worker's state vector after the invocation. */
      readonly stateVector: Uint8Array;
    }
  | { readonly task: number; readonly ok: false; readonly code: WorkerFailureCode; readonly message: string };
