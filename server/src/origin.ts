/**
 * Who made a change. Every update enters the hub with one of these; consumers
 * switch on `kind` exhaustively, which is what keeps echo loops out by
 * construction (a change is never sent back to its origin).
 */
import { assertNever } from './assert-never.js';
import type { ConnectionId } from './connection-id.js';
import type { NodeId } from './node-id.js';

export type Origin =
  /** `sub`: the token's subject (the history's writer), none for an anonymous or development client. */
  | { readonly kind: 'client'; readonly connId: ConnectionId; readonly sub?: string }
  | { readonly kind: 'peer'; readonly nodeId: NodeId }
  | { readonly kind: 'function'; readonly name: string }
  | { readonly kind: 'storage' }
  | { readonly kind: 'http'; readonly sub?: string };

export const STORAGE_ORIGIN: Origin = Object.freeze({ kind: 'storage' });
export const HTTP_ORIGIN: Origin = Object.freeze({ kind: 'http' });

/** Yjs transaction origins are `unknown`; ours are always one of the above. */
export const isOrigin = (value: unknown): value is Origin =>
  typeof value === 'object' &&
  value !== null &&
  typeof (value as { kind?: unknown }).kind === 'string';

/** True when `a` and `b` are the same writer (exhaustive: a new kind must say what "same" means). */
export const sameOrigin = (a: Origin, b: Origin): boolean => {
  switch (a.kind) {
    case 'client':
      return b.kind === 'client' && b.connId === a.connId;
    case 'peer':
      return b.kind === 'peer' && b.nodeId === a.nodeId;
    case 'function':
      return b.kind === 'function' && b.name === a.name;
    case 'storage':
    case 'http':
      return b.kind === a.kind;
    default:
      return assertNever(a, 'origin');
  }
};

/**
 * The writer of a change as the history and the change feed name it:
 * `user:<sub>` (a token's subject, over WebSocket or HTTP), `anonymous`,
 * `function:<name>`, `peer:<nodeId>` (arrived from another node) or `node`.
 */
export const writerOf = (origin: Origin | undefined): string => {
  if (origin === undefined) return 'node';
  switch (origin.kind) {
    case 'client':
    case 'http':
      return origin.sub !== undefined ? `user:${origin.sub}` : 'anonymous';
    case 'function':
      return `function:${origin.name}`;
    case 'peer':
      return `peer:${origin.nodeId}`;
    case 'storage':
      return 'node';
    default:
      return assertNever(origin, 'origin');
  }
};

/** An HTTP write's origin: the caller's token subject, when it names someone. */
export const httpOrigin = (sub: string | undefined): Origin =>
  sub === undefined ? HTTP_ORIGIN : Object.freeze({ kind: 'http', sub });
