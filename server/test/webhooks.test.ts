/**
 * Webhooks (docs/history.md, "Webhooks"): Standard Webhooks signatures; only
 * documents under the target's prefix; delivery status and metrics; and, with
 * the node as a child process on real LevelDB, a receiver that fails half its
 * requests, hangs on one, is down for a while, and a kill -9 of the node in the
 * middle: every stored change reaches the receiver, each document's events in
 * order, the event in flight at the crash again under the same id.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import * as Y from 'yjs';
import { signWebhook, verifyWebhook, webhookKey } from '../src/webhooks/signature.js';
import { parseWebhookTarget } from '../src/webhooks/webhook-target.js';
import { httpEditor } from './helpers/history.js';
import { spawnNode, startNode, stopChild, tempDir, type ChildNode } from './helpers/node.js';
import { startWebhookReceiver, type ReceivedRequest } from './helpers/webhook-receiver.js';
import { waitFor } from './helpers/wait.js';
import { createMemoryBackplaneMedium } from '../src/cluster/memory-backplane.js';

const SECRET = `whsec_${Buffer.from('webhook-test-secret-32-bytes-long').toString('base64')}`;
const KEY = webhookKey(SECRET);

interface Payload {
  type: string;
  timestamp: string;
  data: {
    doc: string;
    cursor: string;
    firstCursor: string;
    changes: number;
    writers: string[];
    update: string;
  };
}

const payloadOf = (r: ReceivedRequest): Payload => JSON.parse(r.body) as Payload;

const verified = (r: ReceivedRequest): boolean => verifyWebhook(KEY, r, r.body, r.receivedAt);

/** Each document as the receiver can rebuild it from the events it accepted (once per id). */
const rebuild = (accepted: readonly ReceivedRequest[]): Map<string, Y.Doc> => {
  const docs = new Map<string, Y.Doc>();
  const seen = new Set<string>();
  for (const r of accepted) {
    if (seen.has(r.id)) continue;
    seen.add(r.id);
    const { data } = payloadOf(r);
    const doc = docs.get(data.doc) ?? new Y.Doc();
    docs.set(data.doc, doc);
    Y.applyUpdate(doc, Buffer.from(data.update, 'base64'));
  }
  return docs;
};

const keysOf = (docs: Map<string, Y.Doc>, name: string): string[] =>
  [...(docs.get(name)?.getMap('m').keys() ?? [])].sort();

describe('webhook signatures', () => {
  it('verify with the key, and fail for another body, key or an old timestamp', () => {
    const now = 1_800_000_000;
    const body = '{"a":1}';
    const h = signWebhook(KEY, 'msg_1', now, body);
    const headers = {
      id: h['webhook-id'],
      timestamp: h['webhook-timestamp'],
      signature: h['webhook-signature'],
    };
    assert.match(headers.signature, /^v1,[A-Za-z0-9+/]+=*$/);
    assert.equal(verifyWebhook(KEY, headers, body, now), true);
    assert.equal(verifyWebhook(KEY, headers, '{"a":2}', now), false);
    assert.equal(
      verifyWebhook(webhookKey('another-secret-of-enough-bytes'), headers, body, now),
      false,
    );
    assert.equal(verifyWebhook(KEY, { ...headers, id: 'msg_2' }, body, now), false);
    assert.equal(verifyWebhook(KEY, headers, body, now + 301), false, 'a replay later is refused');
    assert.equal(
      verifyWebhook(KEY, { ...headers, signature: `v1,AAAA ${headers.signature}` }, body, now),
      true,
      'one of several signatures may match (key rotation)',
    );
  });

  it('takes whsec_<base64> as the decoded bytes', () => {
    assert.equal(KEY.toString(), 'webhook-test-secret-32-bytes-long');
    assert.equal(webhookKey('plain-text-secret').toString(), 'plain-text-secret');
  });

  it('parses URL and PREFIX=URL targets and refuses other schemes', () => {
    assert.deepEqual(parseWebhookTarget('http://h:1/x?t=1'), {
      url: 'http://h:1/x?t=1',
      prefix: '',
    });
    assert.deepEqual(parseWebhookTarget('orders/=https://h/x'), {
      url: 'https://h/x',
      prefix: 'orders/',
    });
    assert.throws(() => parseWebhookTarget('ftp://h/x'), /http/);
    assert.throws(() => parseWebhookTarget('orders/=nothing'), /expected/);
  });
});

describe('webhook delivery', { timeout: 240_000 }, () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  after(async () => {
    for (const step of cleanup.reverse()) await step();
  });

  it('sends the changes of documents under its prefix, signed, and reports status and metrics', async () => {
    const receiver = await startWebhookReceiver();
    cleanup.push(() => receiver.close());
    const node = await startNode({
      webhooks: [`team/=${receiver.url}`],
      webhookSecret: SECRET,
      webhookDebounceMs: 100,
    });
    cleanup.push(() => node.close());
    const inside = httpEditor(node.url, 'team/notes');
    const outside = httpEditor(node.url, 'other/notes');
    for (let i = 0; i < 5; i++) {
      await inside.edit((d) => d.getMap('m').set(`k${i}`, i));
      await outside.edit((d) => d.getMap('m').set(`k${i}`, i));
    }
    await waitFor(
      () => keysOf(rebuild(receiver.accepted()), 'team/notes').length === 5,
      'the five changes of team/notes',
      20_000,
    );
    const docs = rebuild(receiver.accepted());
    assert.deepEqual([...docs.keys()], ['team/notes'], 'nothing outside the prefix');
    assert.deepEqual(docs.get('team/notes')!.getMap('m').toJSON(), inside.doc.getMap('m').toJSON());
    for (const r of receiver.requests) {
      assert.ok(verified(r), `signature of ${r.id}`);
      const p = payloadOf(r);
      assert.equal(p.type, 'document.changed');
      assert.deepEqual(p.data.writers, ['anonymous']);
    }
    const status = await (await fetch(`${node.url}/v1/webhooks`)).json();
    const [hook] = (status as { webhooks: Array<Record<string, unknown>> }).webhooks;
    assert.equal(hook!.prefix, 'team/');
    assert.equal(hook!.consecutiveFailures, 0);
    assert.equal(hook!.delivered, receiver.accepted().length);
    const metrics = await (await fetch(`${node.url}/metrics`)).text();
    assert.match(
      metrics,
      /stateweave_webhook_deliveries_total\{hook="team\/ http:\/\/127\.0\.0\.1:\d+\/hook",result="ok"\} [1-9]/,
    );
  });

  it('drops an event whose receiver fails past --webhook-max-age, with a metric, a log line and the next event delivered', async () => {
    const receiver = await startWebhookReceiver();
    cleanup.push(() => receiver.close());
    receiver.mode = 'fail';
    const lines: string[] = [];
    const node = await startNode({
      webhooks: [receiver.url],
      webhookSecret: SECRET,
      webhookDebounceMs: 0,
      webhookMaxAgeMs: 300,
      webhookRetryMaxMs: 50,
      logger: pino({ level: 'warn' }, { write: (line: string) => void lines.push(line) }),
    });
    cleanup.push(() => node.close());
    const editor = httpEditor(node.url, 'lost');
    await editor.edit((d) => d.getMap('m').set('gone', 1));
    const status = async () =>
      (
        (await (await fetch(`${node.url}/v1/webhooks`)).json()) as {
          webhooks: Array<{ dropped: number; consecutiveFailures: number }>;
        }
      ).webhooks[0]!;
    await waitFor(async () => (await status()).dropped === 1, 'the event dropped', 20_000);
    assert.ok((await status()).consecutiveFailures > 1);
    const metrics = await (await fetch(`${node.url}/metrics`)).text();
    assert.match(
      metrics,
      /stateweave_webhook_dropped_total\{hook="\* http:\/\/127\.0\.0\.1:\d+\/hook"\} 1/,
    );
    assert.ok(
      lines.some((l) => l.includes('webhook event dropped')),
      'a log line says so',
    );
    assert.ok(lines.some((l) => l.includes('webhook delivery failed')));

    receiver.mode = 'ok';
    // Another writer: the dropped update is missing from the receiver's copy, and Yjs holds
    // back a writer's later updates until its earlier ones arrive (a receiver that saw a drop
    // reads the whole document instead: docs/history.md).
    await httpEditor(node.url, 'lost').edit((d) => d.getMap('m').set('kept', 2));
    await waitFor(
      () => keysOf(rebuild(receiver.accepted()), 'lost').includes('kept'),
      'the next change delivered',
      20_000,
    );
    assert.equal((await status()).consecutiveFailures, 0);
  });

  it('loses nothing across a flaky receiver, a hung request, an outage and a kill -9 of the node', async () => {
    const receiver = await startWebhookReceiver();
    cleanup.push(() => receiver.close());
    receiver.mode = 'flaky';
    const dir = await tempDir();
    cleanup.push(() => dir.remove());
    const args = [
      '--webhook',
      `docs/=${receiver.url}`,
      '--webhook-secret',
      SECRET,
      '--webhook-debounce-ms',
      '50',
      '--webhook-retry-max-ms',
      '300',
      '--compact-after-updates',
      '4',
    ];
    let node: ChildNode = await spawnNode(dir.path, args);
    cleanup.push(() => stopChild(node, 'SIGKILL'));
    const names = ['docs/a', 'docs/b', 'docs/c'];
    const written = new Map<string, string[]>(names.map((n) => [n, []]));
    const write = async (url: string, phase: string, count: number): Promise<void> => {
      for (const name of names) {
        const editor = httpEditor(url, name);
        for (let i = 0; i < count; i++) {
          const key = `${phase}${i}`;
          await editor.edit((d) => d.getMap('m').set(key, i));
          written.get(name)!.push(key);
        }
      }
      await httpEditor(url, 'elsewhere/x').edit((d) => d.getMap('m').set(phase, 1));
    };
    const allThere = (): boolean => {
      const docs = rebuild(receiver.accepted());
      return names.every((n) => keysOf(docs, n).length === written.get(n)!.length);
    };

    await write(node.url, 'a', 5);
    await waitFor(allThere, 'the first changes, through a receiver failing half the time', 30_000);

    // A request the receiver takes but never answers: the node dies waiting for it.
    receiver.mode = 'hang';
    await write(node.url, 'b', 3);
    const hung = await waitFor(
      () => receiver.requests.find((r) => r.status === undefined),
      'a request in flight',
      20_000,
    );
    await stopChild(node, 'SIGKILL');
    await receiver.down();

    node = await spawnNode(dir.path, args);
    await write(node.url, 'c', 4);
    await waitFor(
      () => node.output().includes('webhook delivery failed'),
      'the restarted node retrying against the receiver that is down',
      20_000,
    );
    receiver.mode = 'flaky';
    await receiver.up();
    await waitFor(allThere, 'every change after the outage and the crash', 60_000);

    const accepted = receiver.accepted();
    assert.ok(
      accepted.some((r) => r.id === hung.id),
      'the event in flight at the crash came again under the same id',
    );
    assert.ok(
      receiver.requests.some((r) => r.status === 503),
      'the receiver did fail requests',
    );
    for (const r of receiver.requests) assert.ok(verified(r), `signature of ${r.id}`);
    // A retried id carries the same event.
    const bodies = new Map<string, string>();
    for (const r of receiver.requests) {
      assert.equal(bodies.get(r.id) ?? r.body, r.body, `one body for ${r.id}`);
      bodies.set(r.id, r.body);
    }
    // Each document's events, first acceptance of each id, in cursor order.
    const firstSeen = new Set<string>();
    const lastCursor = new Map<string, number>();
    for (const r of accepted) {
      if (firstSeen.has(r.id)) continue;
      firstSeen.add(r.id);
      const { data } = payloadOf(r);
      const previous = lastCursor.get(data.doc) ?? 0;
      assert.ok(Number(data.firstCursor) > previous, `${data.doc}: ${r.id} after ${previous}`);
      lastCursor.set(data.doc, Number(data.cursor));
    }
    // The receiver's copy equals the node's.
    const docs = rebuild(accepted);
    assert.deepEqual([...docs.keys()].sort(), names, 'nothing outside the prefix');
    for (const name of names) {
      assert.deepEqual(keysOf(docs, name), [...written.get(name)!].sort(), name);
      const res = await fetch(`${node.url}/v1/docs/${name}`, {
        headers: { accept: 'application/octet-stream' },
      });
      const stored = new Y.Doc();
      Y.applyUpdate(stored, new Uint8Array(await res.arrayBuffer()));
      assert.deepEqual(docs.get(name)!.getMap('m').toJSON(), stored.getMap('m').toJSON(), name);
    }
  });

  it('in a cluster, delivers each change from the node it entered through, and from another only within its own entry', async () => {
    const receiver = await startWebhookReceiver();
    cleanup.push(() => receiver.close());
    const medium = createMemoryBackplaneMedium();
    const nodes = [];
    for (const id of ['w1', 'w2']) {
      const node = await startNode({
        nodeId: id,
        backplane: medium.join(id),
        webhooks: [receiver.url],
        webhookSecret: SECRET,
        webhookDebounceMs: 50,
      });
      cleanup.push(() => node.close());
      nodes.push(node);
    }
    const keys: string[] = [];
    for (let i = 0; i < 6; i++) {
      const key = `k${i}`;
      // A writer per change: each event's update then applies on its own.
      await httpEditor(nodes[i % 2]!.url, 'c/x').edit((d) => d.getMap('m').set(key, i));
      keys.push(key);
    }
    const everyKey = async (url: string) => {
      const res = await fetch(`${url}/v1/docs/c/x`);
      return res.ok && Object.keys(((await res.json()) as { m: object }).m).length === keys.length;
    };
    for (const node of nodes)
      await waitFor(() => everyKey(node.url), `replication to ${node.url}`, 20_000);
    // Each node's webhook has looked at its whole log, peers' entries included.
    for (const node of nodes) {
      const feed = (await (
        await fetch(`${node.url}/v1/docs/c/x/changes?wait=0`, {
          headers: { accept: 'application/json' },
        })
      ).json()) as { cursor: string };
      await waitFor(
        async () => {
          const [hook] = (
            (await (await fetch(`${node.url}/v1/webhooks`)).json()) as {
              webhooks: Array<{ cursor: string; pendingSince: string | null }>;
            }
          ).webhooks;
          return Number(hook!.cursor) >= Number(feed.cursor) && hook!.pendingSince === null;
        },
        `the webhook of ${node.url} past its log`,
        20_000,
      );
    }
    // Which node's event carried each key.
    const seen = new Map<string, string[]>();
    const ids = new Set<string>();
    for (const r of receiver.accepted()) {
      if (ids.has(r.id)) continue;
      ids.add(r.id);
      const doc = new Y.Doc();
      Y.applyUpdate(doc, Buffer.from(payloadOf(r).data.update, 'base64'));
      for (const key of doc.getMap('m').keys())
        seen.set(key, [...(seen.get(key) ?? []), r.id.split('_')[1]!]);
    }
    // A node stores a peer's change and its own of the same moment as one entry
    // (writers ['peer:…', 'anonymous']); only such an entry is delivered by both.
    const mixed = new Map<string, Set<string>>();
    for (const [i, node] of nodes.entries()) {
      const feed = (await (
        await fetch(`${node.url}/v1/docs/c/x/changes?wait=0`, {
          headers: { accept: 'application/json' },
        })
      ).json()) as { changes: Array<{ writers: string[]; update: string }> };
      const found = new Set<string>();
      for (const c of feed.changes) {
        if (!c.writers.some((w) => w.startsWith('peer:'))) continue;
        if (c.writers.every((w) => w.startsWith('peer:'))) continue;
        const doc = new Y.Doc();
        Y.applyUpdate(doc, Buffer.from(c.update, 'base64'));
        for (const key of doc.getMap('m').keys()) found.add(key);
      }
      mixed.set(`w${i + 1}`, found);
    }
    keys.forEach((key, i) => {
      const by = seen.get(key) ?? [];
      const entered = `w${(i % 2) + 1}`;
      const other = `w${((i + 1) % 2) + 1}`;
      assert.equal(by.filter((n) => n === entered).length, 1, `${key} by ${entered}: ${by}`);
      const again = by.filter((n) => n === other).length;
      assert.ok(
        again === 0 || (again === 1 && mixed.get(other)!.has(key)),
        `${key} by ${other} only in a mixed entry: ${by}`,
      );
    });
  });
});
