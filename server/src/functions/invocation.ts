/**
 * What an invocation is at the runtime's seam: the request the edges (HTTP,
 * WebSocket, a forwarding peer) hand in, and the answer they send back. Its own
 * module so the runtime and the executor share it without importing each other.
 */
import type { Grant } from '../auth/grant.js';

export interface InvokeRequest {
  readonly name: string;
  readonly input: unknown;
  readonly idempotencyKey?: string;
  readonly grant: Grant;
  /** Throws (FORBIDDEN, ...) unless the caller may run `kind` on `doc`. */
  readonly authorize: (doc: string, kind: 'mutation' | 'query') => void;
  /**
   * Runs the request on another node (the `owner` of its document) and returns
   * that node's answer. Absent for a request that was itself forwarded: it runs here.
   */
  readonly forward?: (nodeId: string, doc: string) => Promise<InvokeResult>;
}

export interface InvokeResult {
  /** The result as JSON text. */
  readonly json: string;
  /** true when an earlier invocation with the same idempotency key answered. */
  readonly replayed: boolean;
  readonly version: string;
  /** The document it worked on. */
  readonly doc: string;
}
