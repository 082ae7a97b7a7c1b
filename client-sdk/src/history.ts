/**
 * `client.history`: a document's versions, its content at a version or time,
 * naming, restore, diffs and the change feed as long-poll JSON, over the node's
 * HTTP routes (the server's docs/history.md). Requests go to the node the client
 * uses; a refused token is refreshed once, as for function calls (node-http.ts).
 */
import { docPath, validateDocName } from './doc-name.js';
import { createNodeHttp, type NodeHttpOptions } from './node-http.js';

export interface Version {
  /** The version id (a log position): what `at`, `restore` and `diff` take. */
  readonly id: string;
  /** ISO time of its last change (of its naming, for a named version). */
  readonly time: string;
  /** ISO time of its first change. */
  readonly from: string;
  /** `user:<sub>`, `anonymous`, `function:<name>`, `peer:<node>`, `node`. */
  readonly writers: readonly string[];
  readonly size: number;
  readonly changes: number;
  readonly name?: string;
}

export interface ChangeEvent {
  /** Continue after this event with `since`. */
  readonly cursor: string;
  readonly doc: string;
  readonly time: string;
  readonly writers: readonly string[];
  /** The Yjs update, base64. */
  readonly update: string;
}

export interface JsonChange {
  readonly op: 'add' | 'remove' | 'change';
  readonly path: readonly (string | number)[];
  readonly old?: unknown;
  readonly value?: unknown;
}

export interface ChangesOptions {
  /** Changes after this cursor. @default '0' (all the history holds) */
  readonly since?: string;
  /** Seconds to wait for a change when there is none (0–60). @default 25 */
  readonly wait?: number;
  readonly signal?: AbortSignal;
}

export interface DocumentHistory {
  /** Versions, newest first; pass `next` as `before` for the next page. */
  versions(
    name: string,
    options?: { limit?: number; before?: string },
  ): Promise<{ versions: Version[]; next: string | null }>;
  /** The document's JSON as it was at a version id or an ISO time. */
  at(name: string, at: string): Promise<Record<string, unknown>>;
  /** Names the current state (named versions outlive the retention window). */
  nameVersion(name: string, label: string): Promise<Version>;
  /** Brings a version's content back as a new change every client receives. */
  restore(name: string, version: string): Promise<{ restored: string; changed: boolean }>;
  /** What changed in the JSON between two versions (`to` defaults to the newest). */
  diff(
    name: string,
    from: string,
    to?: string,
  ): Promise<{ from: string; to: string; changes: JsonChange[] }>;
  /** The next changes of a document after `since` (long poll). */
  changes(
    name: string,
    options?: ChangesOptions,
  ): Promise<{ changes: ChangeEvent[]; cursor: string }>;
}

/** Where and how to ask (the client's node, token and fetch). */
export type HistoryClientOptions = NodeHttpOptions;

export const createHistoryClient = (options: HistoryClientOptions): DocumentHistory => {
  const http = createNodeHttp(options);
  const request = (
    method: 'GET' | 'POST',
    path: string,
    body?: unknown,
    signal?: AbortSignal,
  ): Promise<unknown> =>
    http.json({
      method,
      path,
      ...(body !== undefined ? { json: body } : {}),
      ...(signal ? { signal } : {}),
    });

  const docs = (
    name: string,
    rest = '',
    query: Record<string, string | undefined> = {},
  ): string => {
    const params = Object.entries(query).filter((e): e is [string, string] => e[1] !== undefined);
    const search = params.length > 0 ? `?${new URLSearchParams(params).toString()}` : '';
    return `/v1/docs/${docPath(validateDocName(name))}${rest}${search}`;
  };

  return {
    async versions(name, page = {}) {
      return (await request(
        'GET',
        docs(name, '/versions', {
          limit: page.limit !== undefined ? String(page.limit) : undefined,
          before: page.before,
        }),
      )) as { versions: Version[]; next: string | null };
    },
    async at(name, at) {
      return (await request('GET', docs(name, '', { at }))) as Record<string, unknown>;
    },
    async nameVersion(name, label) {
      return (await request('POST', docs(name, '/versions'), { name: label })) as Version;
    },
    async restore(name, version) {
      const body = /^\d+$/.test(version) ? { version } : { at: version };
      return (await request('POST', docs(name, '/restore'), body)) as {
        restored: string;
        changed: boolean;
      };
    },
    async diff(name, from, to) {
      return (await request('GET', docs(name, '/diff', { from, to }))) as {
        from: string;
        to: string;
        changes: JsonChange[];
      };
    },
    async changes(name, { since, wait, signal } = {}) {
      return (await request(
        'GET',
        docs(name, '/changes', { since: since ?? '0', wait: String(wait ?? 25) }),
        undefined,
        signal,
      )) as { changes: ChangeEvent[]; cursor: string };
    },
  };
};
