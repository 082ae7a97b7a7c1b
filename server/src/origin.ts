/**
 * Who made a change. Every update enters the hub with one of these; consumers
 * switch on `kind` exhaustively, which is what keeps echo loops out by
 * construction (a change is never sent back to its origin).
 */
export type Origin =
  | { readonly kind: 'client'; readonly connId: number }
  | { readonly kind: 'peer'; readonly nodeId: string }
  | { readonly kind: 'function'; readonly name: string }
  | { readonly kind: 'storage' }
  | { readonly kind: 'http' };

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
  }
};
