import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { StateweaveClientError, type ConnectionStatus } from '@stateweave/client';
import { stockClient } from '../../server/dist/test/helpers/clients.js';
import { startNode, type TestNode } from '../../server/dist/test/helpers/node.js';
import { deadUrl, sdkClient, settled, textOf, waitFor } from './helpers.js';

describe('SDK clients on one node', () => {
  let node: TestNode;
  before(async () => {
    node = await startNode();
  });
  after(() => node.close());

  it('converges two SDK clients and a stock y-websocket client on one document', async () => {
    const a = sdkClient({ url: node.wsUrl });
    const b = sdkClient({ url: node.wsUrl });
    const ha = a.open('converge');
    const hb = b.open('converge');
    await Promise.all([ha.synced, hb.synced]);
    const stock = await stockClient(node.wsUrl, 'converge');

    // Concurrent edits from all three, at the same position.
    ha.doc.getText('text').insert(0, 'A1 ');
    hb.doc.getText('text').insert(0, 'B1 ');
    stock.doc.getText('text').insert(0, 'S1 ');
    ha.doc.getMap('m').set('a', 1);
    hb.doc.getMap('m').set('b', 2);
    stock.doc.getMap('m').set('s', 3);

    const all = () => [textOf(ha), textOf(hb), stock.doc.getText('text').toString()];
    await waitFor(
      () => new Set(all()).size === 1 && all()[0]!.length === 9,
      'all three texts to converge',
    );
    for (const part of ['A1 ', 'B1 ', 'S1 '])
      assert.ok(textOf(ha).includes(part), `${part} is in ${textOf(ha)}`);
    await waitFor(
      () => hb.doc.getMap('m').size === 3 && ha.doc.getMap('m').size === 3,
      'maps to converge',
    );
    assert.deepEqual(ha.doc.getMap('m').toJSON(), { a: 1, b: 2, s: 3 });
    assert.deepEqual(stock.doc.getMap('m').toJSON(), { a: 1, b: 2, s: 3 });

    await settled(ha, 'a');
    await settled(hb, 'b');
    stock.destroy();
    await Promise.all([a.destroy(), b.destroy()]);
  });

  it('reports status, synced and saved through events', async () => {
    const client = sdkClient({ url: node.wsUrl });
    const handle = client.open('events');
    const statuses: ConnectionStatus[] = [handle.status];
    const pendings: number[] = [];
    let syncedEvents = 0;
    let savedEvents = 0;
    handle.on('status', (s) => statuses.push(s));
    handle.on('synced', () => syncedEvents++);
    handle.on('pending', (n) => pendings.push(n));
    const offSaved = handle.on('saved', () => savedEvents++);

    await handle.synced;
    assert.equal(handle.isSynced, true);
    assert.equal(handle.status, 'connected');
    assert.equal(handle.url, node.wsUrl);
    assert.deepEqual(statuses, ['connecting', 'connected']);
    assert.equal(syncedEvents, 1);

    handle.doc.getText('text').insert(0, 'one');
    handle.doc.getText('text').insert(3, 'two');
    assert.equal(handle.pending, 2, 'two local updates, not yet acknowledged');
    await handle.whenSaved();
    assert.equal(handle.pending, 0);
    assert.equal(savedEvents, 1);
    assert.deepEqual(pendings.slice(0, 2), [1, 2]);
    assert.equal(pendings.at(-1), 0);

    // What the node says is stored is really there.
    const res = await fetch(`${node.url}/v1/docs/events`);
    assert.deepEqual(await res.json(), { text: 'onetwo' });

    offSaved();
    handle.doc.getText('text').insert(0, '!');
    await handle.whenSaved();
    assert.equal(savedEvents, 1, 'off() removed the listener');

    await handle.close();
    assert.equal(handle.status, 'disconnected');
    assert.equal(handle.closed, true);
    assert.equal(client.documents.size, 0);
    await client.destroy();
  });

  it('does not count or echo updates that came from the node', async () => {
    const a = sdkClient({ url: node.wsUrl });
    const b = sdkClient({ url: node.wsUrl });
    const ha = a.open('no-echo');
    const hb = b.open('no-echo');
    await Promise.all([ha.synced, hb.synced]);
    let bPendingEvents = 0;
    hb.on('pending', () => bPendingEvents++);
    ha.doc.getText('text').insert(0, 'from a');
    await waitFor(() => textOf(hb) === 'from a', 'b to receive the edit');
    assert.equal(hb.pending, 0);
    assert.equal(bPendingEvents, 0, 'a remote update is not a local one');
    await settled(ha, 'a');
    await Promise.all([a.destroy(), b.destroy()]);
  });

  it('syncs presence: local state goes out, remote states come in, close removes ours', async () => {
    const a = sdkClient({ url: node.wsUrl });
    const b = sdkClient({ url: node.wsUrl });
    const ha = a.open('presence');
    const hb = b.open('presence');
    await Promise.all([ha.synced, hb.synced]);
    const stock = await stockClient(node.wsUrl, 'presence');

    ha.awareness.setLocalStateField('user', { name: 'ada' });
    stock.provider.awareness.setLocalStateField('user', { name: 'stock' });
    const aId = ha.doc.clientID;
    const userOf = (states: Map<number, Record<string, unknown>>, id: number) =>
      (states.get(id)?.user as { name?: string } | undefined)?.name;
    await waitFor(() => userOf(hb.awareness.getStates(), aId) === 'ada', 'b to see a');
    await waitFor(
      () => userOf(stock.provider.awareness.getStates(), aId) === 'ada',
      'the stock client to see a',
    );
    await waitFor(
      () => userOf(ha.awareness.getStates(), stock.doc.clientID) === 'stock',
      'a to see the stock client',
    );

    await ha.close();
    await waitFor(() => !hb.awareness.getStates().has(aId), 'b to see a leave');
    await waitFor(
      () => !stock.provider.awareness.getStates().has(aId),
      'the stock client to see a leave',
    );

    stock.destroy();
    await Promise.all([a.destroy(), b.destroy()]);
  });

  it('returns the same handle for a name that is already open, and refuses invalid names up front', async () => {
    const client = sdkClient({ url: node.wsUrl });
    const h1 = client.open('same');
    assert.equal(client.open('same'), h1);
    assert.throws(
      () => client.open('../etc/passwd'),
      (err: unknown) => err instanceof StateweaveClientError && err.code === 'INVALID_DOC_NAME',
    );
    assert.throws(
      () => client.open(''),
      (err: unknown) => err instanceof StateweaveClientError && err.code === 'INVALID_DOC_NAME',
    );
    await h1.synced;
    await client.destroy();
    assert.throws(
      () => client.open('same'),
      (err: unknown) => err instanceof StateweaveClientError && err.code === 'DESTROYED',
    );
  });

  it('opens a new handle for a name whose handle is still closing', async () => {
    const client = sdkClient({ url: node.wsUrl });
    const first = client.open('reopened');
    await first.synced;
    first.doc.getText('text').insert(0, 'kept');
    await first.whenSaved();
    const closing = first.close(); // not awaited: the socket is still closing
    const second = client.open('reopened');
    assert.notEqual(second, first, 'a closing handle is not handed out again');
    await closing;
    assert.equal(client.documents.get('reopened'), second, 'the old close does not evict it');
    await second.synced;
    assert.equal(textOf(second), 'kept');
    await client.destroy();
  });

  it('rejects synced when the handle is closed before it synced', async () => {
    const client = sdkClient({ url: await deadUrl() });
    const handle = client.open('never');
    await handle.close();
    await assert.rejects(
      handle.synced,
      (err: unknown) => err instanceof StateweaveClientError && err.code === 'CLOSED',
    );
    await client.destroy();
  });
});
