/**
 * `client.admin`: document administration over the node's HTTP routes (the
 * server's README, "HTTP API", and docs/history.md): list stored documents a
 * page at a time with their size and last change, delete one on every node,
 * export documents as Yjs updates and import them into a node. Listing needs
 * `read`, importing `write`, deleting the `admin` right; errors are
 * StateweaveClientError with the node's code (FORBIDDEN, NOT_FOUND, ...).
 */
import { docPath, validateDocName } from './doc-name.js';
import { StateweaveClientError } from './errors.js';
import { createNodeHttp, type NodeHttpOptions } from './node-http.js';

export interface DocumentSummary {
  readonly name: string;
  /** Bytes the node stores for it (snapshot and log). */
  readonly bytes: number;
  /** ISO time its last change was stored; null when the node does not know. */
  readonly lastChange: string | null;
}

export interface DocumentPage {
  readonly docs: DocumentSummary[];
  /** Pass as `cursor` for the next page; null at the end. */
  readonly next: string | null;
}

export interface ListOptions {
  /** Only names that start with this. @default '' */
  readonly prefix?: string;
  /** Documents per page, 1–1000. @default 100 */
  readonly limit?: number;
  /** `next` of the previous page. */
  readonly cursor?: string;
}

/** What a deletion reached (docs/cluster.md, "Deleting a document"). */
export interface DeletionReport {
  readonly deleted: true;
  /** Other nodes that stored the deletion. */
  readonly replicatedTo: readonly string[];
  /** Nodes that did not answer: they learn it when they are back. */
  readonly pending: ReadonlyArray<{ readonly node: string; readonly reason: string }>;
}

/** One document as `stateweave export` writes it, with the update as bytes. */
export interface ExportedDocument {
  readonly name: string;
  /** The document's whole state as one Yjs update (`Y.applyUpdate` it). */
  readonly update: Uint8Array;
}

export interface DocumentAdmin {
  /** One page of the stored documents the token may read, in name order. */
  list(options?: ListOptions): Promise<DocumentPage>;
  /** Every stored document under `prefix` the token may read, page by page. */
  listAll(options?: { readonly prefix?: string }): AsyncIterable<DocumentSummary>;
  /**
   * Deletes the document on every node (`admin` right): its clients are closed
   * with DOC_DELETED, and what it held does not come back from a replica.
   */
  delete(name: string): Promise<DeletionReport>;
  /** The document's state as one Yjs update; NOT_FOUND when it is empty or absent. */
  exportDoc(name: string): Promise<Uint8Array>;
  /** Every document under `prefix` the token may read, as Yjs updates (a backup of the content). */
  export(options?: { readonly prefix?: string }): AsyncIterable<ExportedDocument>;
  /** Merges a Yjs update (e.g. from `exportDoc`) into the document (`write` right). */
  import(name: string, update: Uint8Array): Promise<void>;
}

/** Pages a listing asks for, at most: it ends even if a node keeps answering `next`. */
const MAX_PAGES = 1_000_000;

const isPage = (value: unknown): value is DocumentPage =>
  typeof value === 'object' &&
  value !== null &&
  Array.isArray((value as { docs?: unknown }).docs) &&
  ((value as { next?: unknown }).next === null ||
    typeof (value as { next?: unknown }).next === 'string');

export const createAdminClient = (options: NodeHttpOptions): DocumentAdmin => {
  const http = createNodeHttp(options);
  const docUrl = (name: string, rest = ''): string =>
    `/v1/docs/${docPath(validateDocName(name))}${rest}`;

  const list = async ({ prefix, limit, cursor }: ListOptions = {}): Promise<DocumentPage> => {
    if (limit !== undefined && (!Number.isInteger(limit) || limit < 1 || limit > 1000))
      throw new StateweaveClientError('INVALID_OPTIONS', 'limit: an integer from 1 to 1000');
    const query = new URLSearchParams();
    if (prefix) query.set('prefix', prefix);
    if (limit !== undefined) query.set('limit', String(limit));
    if (cursor !== undefined) query.set('cursor', cursor);
    const search = query.toString() === '' ? '' : `?${query.toString()}`;
    const page = await http.json({ method: 'GET', path: `/v1/docs${search}` });
    if (!isPage(page))
      throw new StateweaveClientError('INVALID_RESPONSE', 'the node answered a list without docs');
    return page;
  };

  const listAll = async function* ({ prefix }: { readonly prefix?: string } = {}) {
    let cursor: string | undefined;
    for (let pages = 0; pages < MAX_PAGES; pages++) {
      const page = await list({
        limit: 1000,
        ...(prefix !== undefined ? { prefix } : {}),
        ...(cursor !== undefined ? { cursor } : {}),
      });
      yield* page.docs;
      if (page.next === null) return;
      cursor = page.next;
    }
  };

  const exportDoc = (name: string): Promise<Uint8Array> =>
    http.bytes({ method: 'GET', path: docUrl(name) });

  return {
    list,
    listAll,
    async delete(name) {
      const report = (await http.json({ method: 'DELETE', path: docUrl(name) })) as {
        replicatedTo?: string[];
        pending?: DeletionReport['pending'];
      };
      // A single node without a cluster answers only {"deleted":true}.
      return {
        deleted: true,
        replicatedTo: report.replicatedTo ?? [],
        pending: report.pending ?? [],
      };
    },
    exportDoc,
    async *export(exportOptions = {}) {
      for await (const { name } of listAll(exportOptions)) {
        try {
          yield { name, update: await exportDoc(name) };
        } catch (err) {
          // Deleted or emptied since it was listed: nothing to export.
          if (err instanceof StateweaveClientError && err.code === 'NOT_FOUND') continue;
          throw err;
        }
      }
    },
    async import(name, update) {
      await http.json({ method: 'POST', path: docUrl(name, '/updates'), bytes: update });
    },
  };
};
