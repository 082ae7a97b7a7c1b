/**
 * Writing without Yjs (`PATCH /v1/docs/:name` with JSON), and the HTTP errors a
 * newcomer meets first, asserted as sentences: each says what to send instead.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as Y from 'yjs';
import { startNode, type TestNode } from './helpers/node.js';
import { stockClient } from './helpers/clients.js';
import { waitFor } from './helpers/wait.js';

interface ErrorBody {
  error: { code: string; message: string };
}

describe('PATCH /v1/docs/:name (JSON writes)', () => {
  let node: TestNode;
  before(async () => {
    node = await startNode();
  });
  after(() => node.close());

  const patch = (name: string, body: string, type = 'application/json') =>
    fetch(`${node.url}/v1/docs/${name}`, {
      method: 'PATCH',
      headers: { 'content-type': type },
      body,
    });
  const read = async (name: string): Promise<unknown> =>
    (await fetch(`${node.url}/v1/docs/${name}`)).json();

  it('sets a Y.Text, merges into a Y.Map and replaces a Y.Array, seen by a stock client', async () => {
    const client = await stockClient(node.wsUrl, 'json/one');
    try {
      const first = await patch(
        'json/one',
        JSON.stringify({ body: 'Hello world', meta: { title: 'Notes' }, tags: ['a', 'b'] }),
      );
      assert.equal(first.status, 200);
      assert.deepEqual(await first.json(), { saved: true, changed: true });
      await patch('json/one', JSON.stringify({ meta: { owner: 'ada' }, tags: ['c'] }));
      assert.deepEqual(await read('json/one'), {
        body: 'Hello world',
        meta: { title: 'Notes', owner: 'ada' },
        tags: ['c'],
      });
      await waitFor(
        () =>
          client.doc.getText('body').toString() === 'Hello world' &&
          client.doc.getMap('meta').get('owner') === 'ada' &&
          client.doc.getArray('tags').toJSON().join() === 'c',
        'the stock client to receive the JSON writes',
      );
    } finally {
      client.destroy();
    }
  });

  it('edits a text as the smallest change, so an offline edit elsewhere in it survives', async () => {
    const client = await stockClient(node.wsUrl, 'json/text');
    try {
      await patch('json/text', JSON.stringify({ body: 'one two three' }));
      await waitFor(
        () => client.doc.getText('body').toString() === 'one two three',
        'the first text',
      );
      // Offline, the client edits inside "three"; meanwhile the PATCH changes "two".
      client.provider.disconnect();
      client.doc.getText('body').insert(11, 'X');
      const res = await patch('json/text', JSON.stringify({ body: 'one 2 three' }));
      assert.equal(res.status, 200);
      client.provider.connect();
      // Replacing the whole text would have stranded the X ("Xone 2 three", measured).
      await waitFor(async () => {
        const body = (await read('json/text')) as { body: string };
        return body.body === 'one 2 thrXee' && client.doc.getText('body').toString() === body.body;
      }, 'both edits merged on the node and the client');
    } finally {
      client.destroy();
    }
  });

  it('deletes text too (a delete-only change is still a change)', async () => {
    await patch('json/shrink', JSON.stringify({ body: 'abcdef' }));
    const res = await patch('json/shrink', JSON.stringify({ body: 'abc' }));
    assert.deepEqual(await res.json(), { saved: true, changed: true });
    assert.deepEqual(await read('json/shrink'), { body: 'abc' });
    const same = await patch('json/shrink', JSON.stringify({ body: 'abc' }));
    assert.deepEqual(await same.json(), { saved: true, changed: false });
  });

  it('refuses a name that holds another kind of type, changing nothing', async () => {
    await patch('json/kinds', JSON.stringify({ meta: { a: 1 }, body: 'text' }));
    const res = await patch('json/kinds', JSON.stringify({ body: 'fine', meta: 'not a map' }));
    assert.equal(res.status, 409);
    const { error } = (await res.json()) as ErrorBody;
    assert.equal(error.code, 'TYPE_CONFLICT');
    assert.equal(error.message, '"meta" already holds a Y.Map; send an object for it');
    assert.deepEqual(await read('json/kinds'), { meta: { a: 1 }, body: 'text' });
  });

  it('says what a value must be, and where bad JSON breaks', async () => {
    const number = await patch('json/bad', JSON.stringify({ body: 3 }));
    assert.equal(number.status, 400);
    assert.match(
      ((await number.json()) as ErrorBody).error.message,
      /^"body": expected a string \(sets a Y\.Text\), an object \(merges into a Y\.Map\) or an array \(replaces a Y\.Array\), got number$/,
    );
    const list = await patch('json/bad', '[1, 2]');
    assert.match(
      ((await list.json()) as ErrorBody).error.message,
      /^the body must be a JSON object whose keys name top-level types/,
    );
    const broken = await patch('json/bad', '{"body": "x",}');
    assert.equal(broken.status, 400);
    assert.match(
      ((await broken.json()) as ErrorBody).error.message,
      /^the body is not valid JSON: .*position 13/,
    );
  });

  it('needs the write right like every other write', async () => {
    const secured = await startNode({ auth: { secret: 'x'.repeat(32) } });
    try {
      const res = await fetch(`${secured.url}/v1/docs/json/secret`, {
        method: 'PATCH',
        headers: { 'content-type': 'application/json' },
        body: '{"body":"x"}',
      });
      assert.equal(res.status, 401);
    } finally {
      await secured.close();
    }
  });
});

describe('HTTP errors a newcomer meets, as sentences', () => {
  let node: TestNode;
  before(async () => {
    node = await startNode();
  });
  after(() => node.close());

  const post = (body: string | Uint8Array, type: string) =>
    fetch(`${node.url}/v1/docs/errors/doc/updates`, {
      method: 'POST',
      headers: { 'content-type': type },
      body,
    });

  it('answers JSON sent to the binary route with the route that takes JSON', async () => {
    for (const type of ['application/json', 'application/octet-stream']) {
      const res = await post('{"body":"hello"}', type);
      assert.equal(res.status, 422);
      assert.equal(
        ((await res.json()) as ErrorBody).error.message,
        'this route takes a binary Yjs update; to write JSON, send it with PATCH /v1/docs/errors/doc',
      );
    }
  });

  it("answers bytes that are not a Yjs update without Yjs's internals", async () => {
    const res = await post(new Uint8Array([1, 200, 7, 7, 7, 7]), 'application/octet-stream');
    assert.equal(res.status, 422);
    const { message } = ((await res.json()) as ErrorBody).error;
    assert.equal(
      message,
      'the body is not a Yjs update: send the bytes of Y.encodeStateAsUpdate(doc) or of an update event, as application/octet-stream',
    );
  });

  it('still takes a real update', async () => {
    const doc = new Y.Doc();
    doc.getText('t').insert(0, 'ok');
    const res = await post(Y.encodeStateAsUpdate(doc), 'application/octet-stream');
    assert.equal(res.status, 200);
  });

  it('states the name rule when a name is refused', async () => {
    const res = await fetch(`${node.url}/v1/docs/a%20b`);
    assert.equal(res.status, 400);
    assert.equal(
      ((await res.json()) as ErrorBody).error.message,
      `invalid document name "a b": use letters, digits and . _ ~ : @ = + - in segments separated by /, with no empty, '.' or '..' segment`,
    );
  });
});
