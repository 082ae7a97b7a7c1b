/**
 * The HTTP API against a real node: health, readiness and metrics; documents read
 * as JSON and as binary agree with what stock WebSocket clients see; updates
 * posted over HTTP reach those clients and are answered only once stored; every
 * error is JSON `{ error: { code, message } }` with the status from the table.
 */
import { docName } from './helpers/doc-name.js';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as Y from 'yjs';
import { ERRORS, type ErrorCode } from '../src/errors.js';
import { createMemoryStore } from '../src/storage/level-store.js';
import type { Store } from '../src/storage/store.js';
import { delegateStore } from './helpers/store-wrapper.js';
import { stockClient, textUpdate, type StockClient } from './helpers/clients.js';
import { errorCount, sample, scrape } from './helpers/metrics.js';
import { startNode, type TestNode } from './helpers/node.js';
import { sleep, waitFor } from './helpers/wait.js';

const MAX_FRAME_BYTES = 64 * 1024;
const MAX_DOC_BYTES = 256 * 1024;

/** A store whose appends for one document wait until the test opens the gate. */
const gatedStore = (inner: Store) => {
  let gatedDoc: string | undefined;
  let open: () => void = () => undefined;
  let gate = Promise.resolve();
  const appended: string[] = [];
  const store = delegateStore(inner, {
    async append(doc, update, records) {
      if (doc === gatedDoc) await gate;
      const seq = await inner.append(doc, update, records);
      appended.push(doc);
      return seq;
    },
  });
  return {
    store,
    appended,
    hold(doc: string) {
      gatedDoc = doc;
      gate = new Promise<void>((resolve) => (open = resolve));
    },
    release() {
      gatedDoc = undefined;
      open();
    },
  };
};

interface ErrorBody {
  error: { code: string; message: string };
}

/** Asserts a JSON error response with the status and code from the table. */
const expectError = async (res: Response, code: ErrorCode): Promise<ErrorBody> => {
  const text = await res.text();
  assert.equal(res.status, ERRORS[code].status, `status for ${code}: ${text}`);
  assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
  const body = JSON.parse(text) as ErrorBody;
  assert.deepEqual(Object.keys(body), ['error']);
  assert.deepEqual(Object.keys(body.error).sort(), ['code', 'message']);
  assert.equal(body.error.code, code);
  assert.equal(typeof body.error.message, 'string');
  assert.ok(body.error.message.length > 0);
  return body;
};

const postUpdate = (
  url: string,
  name: string,
  body?: Uint8Array,
  headers: Record<string, string> = {},
): Promise<Response> =>
  fetch(`${url}/v1/docs/${name}/updates`, {
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream', ...headers },
    body,
  });

describe('the HTTP API', () => {
  let node: TestNode;
  let gated: ReturnType<typeof gatedStore>;
  const clients: StockClient[] = [];

  before(async () => {
    gated = gatedStore(await createMemoryStore());
    node = await startNode({
      store: gated.store,
      maxFrameBytes: MAX_FRAME_BYTES,
      maxDocBytes: MAX_DOC_BYTES,
    });
  });
  after(async () => {
    gated.release();
    for (const client of clients) client.destroy();
    await node.close();
  });

  const stock = async (name: string): Promise<StockClient> => {
    const client = await stockClient(node.wsUrl, name);
    clients.push(client);
    return client;
  };

  describe('health, readiness and metrics', () => {
    it('GET /healthz answers 200 ok', async () => {
      const res = await fetch(`${node.url}/healthz`);
      assert.equal(res.status, 200);
      assert.deepEqual(await res.json(), { status: 'ok' });
    });

    it('GET /readyz answers 200 ready while listening', async () => {
      const res = await fetch(`${node.url}/readyz`);
      assert.equal(res.status, 200);
      assert.deepEqual(await res.json(), { status: 'ready' });
    });

    it('GET /metrics is Prometheus text with the node metrics', async () => {
      const client = await stock('metrics/doc');
      const res = await fetch(`${node.url}/metrics`);
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
      const text = await res.text();
      for (const [name, type] of [
        ['stateweave_connections', 'gauge'],
        ['stateweave_open_documents', 'gauge'],
        ['stateweave_updates_in_total', 'counter'],
        ['stateweave_updates_out_total', 'counter'],
        ['stateweave_updates_merged_total', 'counter'],
        ['stateweave_bytes_in_total', 'counter'],
        ['stateweave_bytes_out_total', 'counter'],
        ['stateweave_errors_total', 'counter'],
        ['stateweave_store_batch_seconds', 'histogram'],
        ['stateweave_document_load_seconds', 'histogram'],
      ] as const) {
        assert.match(text, new RegExp(`^# HELP ${name} .+$`, 'm'), `HELP for ${name}`);
        assert.match(text, new RegExp(`^# TYPE ${name} ${type}$`, 'm'), `TYPE for ${name}`);
      }
      assert.match(text, /^stateweave_process_/m, 'process metrics under the stateweave_ prefix');
      assert.equal(
        sample(text, 'stateweave_connections'),
        clients.filter((c) => c.provider.wsconnected).length,
      );
      assert.ok(sample(text, 'stateweave_open_documents') >= 1);
      client.doc.getText('t').insert(0, 'counted');
      await waitFor(
        async () =>
          sample(await scrape(node.url), 'stateweave_updates_in_total{origin="client"}') >= 1,
        'the update to be counted',
      );
    });
  });

  describe('GET /v1/docs/:name', () => {
    /** A document with one of each shared type, written by a stock client. */
    const populate = async (name: string) => {
      const writer = await stock(name);
      const { doc } = writer;
      doc.transact(() => {
        doc.getText('text').insert(0, 'Hello, wörld 👋');
        doc.getText('rich').insert(0, 'bold', { bold: true });
        doc.getText('rich').insert(4, ' plain');
        const map = doc.getMap('map');
        map.set('number', 42);
        map.set('string', 'two');
        map.set('list', [1, 'x', { deep: true }]);
        map.set('null', null);
        const inner = new Y.Map<unknown>();
        map.set('inner', inner);
        inner.set('nested', 'yes');
        map.set('gone', 'soon');
        map.delete('gone');
        const list = doc.getArray('list');
        list.push([1, 'two', { three: 3 }]);
        const innerArray = new Y.Array<number>();
        list.push([innerArray]);
        innerArray.push([4, 5]);
        const xml = doc.getXmlFragment('xml');
        const p = new Y.XmlElement('p');
        p.setAttribute('class', 'lead');
        p.insert(0, [new Y.XmlText('hi')]);
        xml.insert(0, [p]);
      });
      const reader = await stock(name);
      await waitFor(
        () =>
          reader.doc.getXmlFragment('xml').length === 1 && reader.doc.getText('text').length > 0,
        'the reader to sync',
      );
      return { writer, reader };
    };

    /** What a client sees, per top-level type, with the types it declared. */
    const clientView = (doc: Y.Doc) => ({
      text: doc.getText('text').toJSON(),
      rich: doc.getText('rich').toJSON(),
      map: doc.getMap('map').toJSON(),
      list: doc.getArray('list').toJSON(),
      xml: doc.getXmlFragment('xml').toJSON(),
    });

    for (const name of ['plain', 'team-42/notes', 'a/b/c/d.e~f:g@h=i+j']) {
      it(`returns ${name} as JSON, as its WebSocket clients see it`, async () => {
        const { writer, reader } = await populate(`json/${name}`);
        const res = await fetch(`${node.url}/v1/docs/json/${name}`);
        assert.equal(res.status, 200);
        assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
        const json = (await res.json()) as Record<string, unknown>;
        assert.deepEqual(json, clientView(reader.doc));
        assert.deepEqual(json, clientView(writer.doc));
        assert.deepEqual(json.xml, '<p class="lead">hi</p>');
      });
    }

    it('returns the document as a binary update with Accept: application/octet-stream', async () => {
      const { reader } = await populate('binary/doc');
      const res = await fetch(`${node.url}/v1/docs/binary/doc`, {
        headers: { accept: 'application/octet-stream' },
      });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), 'application/octet-stream');
      const copy = new Y.Doc();
      Y.applyUpdate(copy, new Uint8Array(await res.arrayBuffer()));
      assert.deepEqual(clientView(copy), clientView(reader.doc));
      assert.deepEqual(Y.encodeStateVector(copy), Y.encodeStateVector(reader.doc));
      assert.equal(copy.getText('rich').toDelta()[0].attributes.bold, true);
      copy.destroy();
    });

    it('reads a name with an encoded slash as the same document', async () => {
      await populate('enc/x');
      const plain = await (await fetch(`${node.url}/v1/docs/enc/x`)).json();
      const encoded = await fetch(`${node.url}/v1/docs/enc%2Fx`);
      assert.equal(encoded.status, 200);
      assert.deepEqual(await encoded.json(), plain);
    });

    it('answers 404 NOT_FOUND for a document never written, as JSON and as binary', async () => {
      await expectError(await fetch(`${node.url}/v1/docs/never/written`), 'NOT_FOUND');
      await expectError(
        await fetch(`${node.url}/v1/docs/never/written`, {
          headers: { accept: 'application/octet-stream' },
        }),
        'NOT_FOUND',
      );
    });

    it('answers 400 INVALID_DOC_NAME for invalid names', async () => {
      for (const name of [
        'bad%20name',
        'a%5Cb',
        'a%00b',
        'x'.repeat(256),
        'caf%C3%A9',
        'a//b',
        'trailing/',
      ]) {
        await expectError(await fetch(`${node.url}/v1/docs/${name}`), 'INVALID_DOC_NAME');
      }
    });

    it('answers 400 for a name that is not valid percent-encoding', async () => {
      await expectError(await fetch(`${node.url}/v1/docs/%E0%A4%A`), 'BAD_REQUEST');
    });
  });

  describe('POST /v1/docs/:name/updates', () => {
    it('applies an update that stock WebSocket clients then see', async () => {
      const name = docName('post/team/notes');
      const a = await stock(name);
      a.doc.getText('text').insert(0, 'from ws; ');
      const source = new Y.Doc();
      const res = await postUpdate(node.url, name, textUpdate(source, 'from http'));
      assert.equal(res.status, 200);
      assert.deepEqual(await res.json(), { saved: true });
      await waitFor(
        () => a.doc.getText('text').toString().includes('from http'),
        'the connected client to see the update',
      );
      const late = await stock(name);
      assert.equal(late.doc.getText('text').toString(), a.doc.getText('text').toString());
      const json = (await (await fetch(`${node.url}/v1/docs/${name}`)).json()) as { text: string };
      assert.equal(json.text, a.doc.getText('text').toString());
      assert.ok(sample(await scrape(node.url), 'stateweave_updates_in_total{origin="http"}') >= 1);
    });

    it('answers only after the update is stored', async () => {
      const name = docName('post/gated');
      const watcher = await stock(name);
      gated.hold(name);
      let answered = false;
      const request = postUpdate(node.url, name, textUpdate(new Y.Doc(), 'durable')).then((res) => {
        answered = true;
        return res;
      });
      // Fan-out does not wait for storage; the answer does.
      await waitFor(
        () => watcher.doc.getText('text').toString() === 'durable',
        'the client to see the update',
      );
      await sleep(200);
      assert.equal(answered, false, 'answered before the store wrote the update');
      assert.ok(!gated.appended.includes(name), 'nothing stored yet');
      gated.release();
      const res = await request;
      assert.equal(res.status, 200);
      assert.deepEqual(await res.json(), { saved: true });
      assert.ok(gated.appended.includes(name), 'stored before the answer');
      const stored = new Y.Doc();
      for (const update of (await gated.store.load(name)).updates) Y.applyUpdate(stored, update);
      assert.equal(stored.getText('text').toString(), 'durable');
    });

    it('answers 400 BAD_REQUEST for an empty body, with or without Content-Length', async () => {
      await expectError(await postUpdate(node.url, 'post/empty'), 'BAD_REQUEST');
      await expectError(await postUpdate(node.url, 'post/empty', new Uint8Array(0)), 'BAD_REQUEST');
      await expectError(await fetch(`${node.url}/v1/docs/post/empty`), 'NOT_FOUND');
    });

    it('answers 422 INVALID_UPDATE for a body that is not a Yjs update, and stores nothing', async () => {
      const before = await errorCount(node.url, 'INVALID_UPDATE');
      for (const garbage of [
        new TextEncoder().encode('not a yjs update'),
        new Uint8Array([0xff, 0xff, 0xff]),
      ]) {
        await expectError(await postUpdate(node.url, 'post/garbage', garbage), 'INVALID_UPDATE');
      }
      assert.equal(await errorCount(node.url, 'INVALID_UPDATE'), before + 2);
      await expectError(await fetch(`${node.url}/v1/docs/post/garbage`), 'NOT_FOUND');
      assert.equal((await gated.store.load(docName('post/garbage'))).updates.length, 0);
    });

    it('answers 413 BODY_TOO_LARGE for a body over the limit, and stores nothing', async () => {
      const before = await errorCount(node.url, 'BODY_TOO_LARGE');
      const big = textUpdate(new Y.Doc(), 'b'.repeat(MAX_FRAME_BYTES + 10));
      await expectError(await postUpdate(node.url, 'post/big', big), 'BODY_TOO_LARGE');
      assert.equal(await errorCount(node.url, 'BODY_TOO_LARGE'), before + 1);
      await expectError(await fetch(`${node.url}/v1/docs/post/big`), 'NOT_FOUND');
    });

    it('answers 413 DOC_TOO_LARGE once the document would pass maxDocBytes, leaving it as it was', async () => {
      const name = docName('post/full');
      const source = new Y.Doc();
      let accepted = 0;
      for (let i = 0; i < 10; i++) {
        const res = await postUpdate(node.url, name, textUpdate(source, 'f'.repeat(60_000)));
        if (res.status !== 200) {
          await expectError(res, 'DOC_TOO_LARGE');
          break;
        }
        accepted++;
      }
      assert.ok(accepted >= 3 && accepted < 10, `${accepted} accepted before the limit`);
      const json = (await (await fetch(`${node.url}/v1/docs/${name}`)).json()) as { text: string };
      assert.equal(json.text.length, accepted * 60_000);
    });

    it('answers 400 BAD_REQUEST for a body the parser cannot read, not 500', async () => {
      await expectError(
        await postUpdate(node.url, 'post/enc', new TextEncoder().encode('not gzip'), {
          'content-encoding': 'gzip',
        }),
        'BAD_REQUEST',
      );
      await expectError(
        await postUpdate(node.url, 'post/enc', textUpdate(new Y.Doc(), 'x'), {
          'content-encoding': 'compress',
        }),
        'BAD_REQUEST',
      );
      await expectError(await fetch(`${node.url}/v1/docs/post/enc`), 'NOT_FOUND');
    });

    it('answers 400 INVALID_DOC_NAME for an invalid name', async () => {
      await expectError(
        await postUpdate(node.url, 'bad%20name', textUpdate(new Y.Doc(), 'x')),
        'INVALID_DOC_NAME',
      );
    });
  });

  describe('other errors', () => {
    it('answers 404 NOT_FOUND as JSON for unknown routes and methods', async () => {
      await expectError(await fetch(`${node.url}/nope`), 'NOT_FOUND');
      await expectError(await fetch(`${node.url}/v1/nope/x`), 'NOT_FOUND');
      await expectError(
        await fetch(`${node.url}/v1/docs/x`, { method: 'PUT', body: 'x' }),
        'NOT_FOUND',
      );
      await expectError(
        await fetch(`${node.url}/v1/docs/x`, { method: 'POST', body: 'x' }),
        'NOT_FOUND',
      );
    });

    it('counts HTTP errors by code in /metrics', async () => {
      const before = await errorCount(node.url, 'NOT_FOUND');
      await expectError(await fetch(`${node.url}/nope`), 'NOT_FOUND');
      assert.equal(await errorCount(node.url, 'NOT_FOUND'), before + 1);
    });
  });
});
