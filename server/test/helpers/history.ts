/**
 * Clients for the history and change-feed routes: an editor that sends a local
 * Y.Doc's changes over HTTP, the JSON feed, and a Server-Sent Events reader.
 */
import assert from 'node:assert/strict';
import * as Y from 'yjs';

export interface FeedEvent {
  readonly cursor: string;
  readonly doc: string;
  readonly time: string;
  readonly writers: string[];
  readonly update: string;
}

const auth = (token?: string): Record<string, string> =>
  token ? { authorization: `Bearer ${token}` } : {};

/** A local replica whose every change is POSTed to the node (answered once stored). */
export const httpEditor = (url: string, name: string, token?: string) => {
  const doc = new Y.Doc();
  return {
    doc,
    async edit(change: (doc: Y.Doc) => void): Promise<void> {
      const before = Y.encodeStateVector(doc);
      change(doc);
      const res = await fetch(`${url}/v1/docs/${name}/updates`, {
        method: 'POST',
        headers: { 'content-type': 'application/octet-stream', ...auth(token) },
        body: Y.encodeStateAsUpdate(doc, before),
      });
      assert.equal(res.status, 200, await res.text());
    },
  };
};

export const getJson = async (
  url: string,
  path: string,
  token?: string,
): Promise<{ status: number; body: unknown; headers: Headers }> => {
  const res = await fetch(`${url}${path}`, {
    headers: { accept: 'application/json', ...auth(token) },
  });
  return { status: res.status, body: await res.json(), headers: res.headers };
};

export const postJson = async (
  url: string,
  path: string,
  body: unknown,
  token?: string,
): Promise<{ status: number; body: unknown }> => {
  const res = await fetch(`${url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...auth(token) },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
};

/** Every change of the feed at `path` after `since`, read as JSON pages without waiting. */
export const readFeed = async (
  url: string,
  path: string,
  since = '0',
  token?: string,
): Promise<FeedEvent[]> => {
  const out: FeedEvent[] = [];
  for (let page = 0; page < 1000; page++) {
    const sep = path.includes('?') ? '&' : '?';
    const { status, body } = await getJson(url, `${path}${sep}since=${since}&wait=0`, token);
    assert.equal(status, 200, JSON.stringify(body));
    const { changes, cursor } = body as { changes: FeedEvent[]; cursor: string };
    out.push(...changes);
    if (changes.length === 0) return out;
    since = cursor;
  }
  throw new Error('feed did not end within 1000 pages');
};

/**
 * Reads Server-Sent Events from `path` until `count` change events arrived
 * (then disconnects), or throws after `timeoutMs`.
 */
export const readSse = async (
  url: string,
  path: string,
  count: number,
  headers: Record<string, string> = {},
  timeoutMs = 15_000,
): Promise<FeedEvent[]> => {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  const events: FeedEvent[] = [];
  try {
    const res = await fetch(`${url}${path}`, {
      headers: { accept: 'text/event-stream', ...headers },
      signal: abort.signal,
    });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/event-stream/);
    const decoder = new TextDecoder();
    let buffer = '';
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buffer += decoder.decode(chunk, { stream: true });
      let end;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const fields = new Map<string, string>();
        for (const line of block.split('\n')) {
          const colon = line.indexOf(':');
          if (colon <= 0) continue; // a comment (heartbeat) or nothing
          fields.set(line.slice(0, colon), line.slice(colon + 1).trimStart());
        }
        if (fields.get('event') !== 'change') continue;
        const event = JSON.parse(fields.get('data')!) as FeedEvent;
        assert.equal(fields.get('id'), event.cursor, 'the SSE id is the cursor');
        events.push(event);
        if (events.length >= count) return events;
      }
    }
    throw new Error(`the stream ended after ${events.length} of ${count} events`);
  } catch (err) {
    if (abort.signal.aborted)
      throw new Error(`timed out after ${events.length} of ${count} events`, { cause: err });
    throw err;
  } finally {
    clearTimeout(timer);
    abort.abort();
  }
};
