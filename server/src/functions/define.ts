/**
 * The definition API: a function is declared as data (Restate-style), so the
 * node can read its name, kind and class without running it, and `typeof` a
 * definition gives the client its input and output types:
 *
 *   const trackVisit = defineFunction({ name: 'trackVisit', doc: (i) => `analytics/${i.page}`, handler });
 *   createClient<FunctionTypesOf<{ trackVisit: typeof trackVisit }>>(...)
 *
 * This module has no imports at runtime: it is also what a function bundle's
 * `@stateweave/server` import resolves to inside a worker.
 */
import type * as Y from 'yjs';

/**
 * The module ids a function's source may import `defineFunction` from. They are
 * not bundled at deploy: the sandbox provides them (with `yjs`). The `/define`
 * entry is the small one, so an author's editor need not load the whole node.
 */
export const DEFINE_MODULES: readonly string[] = [
  '@stateweave/server',
  '@stateweave/server/define',
];

/** Anything with `parse` (a zod schema, a hand-written check): throws on bad input. */
export interface InputValidator<I> {
  parse(value: unknown): I;
}

export type FunctionKind = 'mutation' | 'query';
/** `local`: runs where it is received, effects merge. `owner`: runs on the document's primary node. */
export type Consistency = 'local' | 'owner';

/** Who called: the token's subject and rights. */
export interface CallerAuth {
  readonly subject: string;
  readonly rights: readonly string[];
}

export interface FunctionContext {
  /**
   * The document named by `doc(input)` (the first of `docs(input)`); writes become
   * one update, applied only if the handler returns.
   */
  readonly doc: Y.Doc;
  /**
   * Every document the invocation works on, by name: `doc(input)`'s one, or each of
   * `docs(input)`. Writes to all of them are stored in one atomic batch.
   */
  readonly docs: Readonly<Record<string, Y.Doc>>;
  /**
   * A read-only copy of another document as this node has it now (needs the
   * caller's read right on it). Not serialised with that document's writers: for
   * lookups, not for check-then-act. Writing to the copy fails the invocation.
   */
  read(name: string): Promise<Y.Doc>;
  readonly auth: CallerAuth;
  /** The invocation's start time (ms): the same on every call within one invocation. */
  now(): number;
  /** A pseudo-random number in [0, 1), seeded by the invocation id (replayable). */
  random(): number;
  /** The invocation id; derived from the idempotency key when there is one. */
  readonly id: string;
}

/** What a change trigger (`on`) receives as its input. */
export interface TriggerInput {
  /** The document that changed (also `ctx.doc`). */
  readonly doc: string;
  /** Everything the document gained since the trigger last ran on it, as one Yjs update. */
  readonly changes: Uint8Array;
}

/** What an `onStable` run receives as its input: the window, once every home has what was written in it. */
export interface StableWindowInput {
  /** The document (also `ctx.doc`). */
  readonly doc: string;
  /** The window's bounds in ms since the epoch: [start, end). `ctx.now()` is `end`. */
  readonly start: number;
  readonly end: number;
}

/** Windows of a change trigger that fire once every home of the document has seen them. */
export interface StableWindowOptions {
  /** The window size (`500ms`, `10s`, `5m`, `1h`; at least 100ms). Windows are aligned to the epoch. */
  readonly window: string;
}

export interface FunctionDefinition<I = unknown, O = unknown> {
  readonly name: string;
  /** Names the document the invocation works on (for invocations and schedules; a trigger works on the changed document). */
  readonly doc?: (input: I) => string;
  /**
   * Instead of `doc`: names several documents the invocation writes atomically
   * (all or none). It holds every one of them while it runs, so keep the list short.
   */
  readonly docs?: (input: I) => readonly string[];
  readonly handler: (ctx: FunctionContext, input: I) => O | Promise<O>;
  /** Runtime check of the input; a throw is INVALID_INPUT (400). */
  readonly input?: InputValidator<I>;
  /** @default 'mutation' */
  readonly kind?: FunctionKind;
  /** @default 'local' */
  readonly consistency?: Consistency;
  /** Time limit of one invocation. @default the node's functionTimeoutMs */
  readonly timeoutMs?: number;
  /**
   * Change trigger: runs after changes of every document matching this pattern
   * (`sensors/*`, or one name) with `TriggerInput`; never for its own writes.
   */
  readonly on?: string;
  /**
   * With `on`: instead of after every change, runs once per time window of a
   * matching document that changed, with `StableWindowInput`, once every home of
   * the document holds everything any home had when the window closed (the
   * pointwise minimum of their state vectors covers it), on the document's
   * primary. So the output is the same whichever home computes it (docs/functions.md).
   */
  readonly onStable?: StableWindowOptions;
  /** Schedule: runs every interval (`500ms`, `10s`, `5m`, `1h`) with input `{ at }` (the slot's start, ms). */
  readonly every?: string;
}

/** Declares a function. Returns its argument unchanged: the definition is data. */
export const defineFunction = <I, O>(
  definition: FunctionDefinition<I, O>,
): FunctionDefinition<I, O> => definition;

/** `{ input, output }` of one definition, for a typed client. */
export type SignatureOf<F> =
  F extends FunctionDefinition<infer I, infer O>
    ? { readonly input: I; readonly output: Awaited<O> }
    : never;

/** The client's type map from a record of definitions: `FunctionTypesOf<{ trackVisit: typeof trackVisit }>`. */
export type FunctionTypesOf<T> = { readonly [K in keyof T]: SignatureOf<T[K]> };

/** True for a value that looks like a definition (used when loading a bundle). */
export const isFunctionDefinition = (value: unknown): value is FunctionDefinition =>
  typeof value === 'object' &&
  value !== null &&
  typeof (value as { name?: unknown }).name === 'string' &&
  typeof (value as { handler?: unknown }).handler === 'function' &&
  (typeof (value as { doc?: unknown }).doc === 'function' ||
    typeof (value as { docs?: unknown }).docs === 'function' ||
    typeof (value as { on?: unknown }).on === 'string');

/** `every` as milliseconds; undefined when it is not `<n>ms|s|m|h`. */
export const parseInterval = (every: string): number | undefined => {
  const match = /^(\d+)(ms|s|m|h)$/.exec(every.trim());
  if (!match) return undefined;
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[match[2] as 'ms' | 's' | 'm' | 'h'];
  return Number(match[1]) * unit;
};
