/**
 * Failover between independent nodes: when the node in use goes away (1001) or
 * cannot be reached, the client continues on the next URL, and its local state
 * (with edits made in between) is carried over by the sync handshake.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { stockClient } from '../../server/dist/test/helpers/clients.js';
import { startNode } from '../../server/dist/test/helpers/node.js';
import { sdkClient, settled, textOf, waitFor } from './helpers.js';

describe('failover', () => {
  it('continues on the second node when the first one shuts down', async () => {
    const first = await startNode();
    const second = await startNode();
    const client = sdkClient({ urls: [first.wsUrl, second.wsUrl] });
    const handle = client.open('failover');
    await handle.synced;
    assert.equal(handle.url, first.wsUrl);
    handle.doc.getText('text').insert(0, 'on first;');
    await settled(handle, 'the handle on the first node');

    const statuses: string[] = [];
    handle.on('status', (s) => statuses.push(s));
    await first.close(); // sockets get 1001 SHUTTING_DOWN
    handle.doc.getText('text').insert(handle.doc.getText('text').length, ' while moving;');
    await waitFor(
      () => handle.url === second.wsUrl && handle.isSynced,
      'the handle to sync with the second node',
      5000,
    );
    handle.doc.getText('text').insert(handle.doc.getText('text').length, ' on second');
    await settled(handle, 'the handle on the second node');
    assert.ok(
      statuses.includes('disconnected') && statuses.at(-1) === 'connected',
      statuses.join(' → '),
    );

    // The second node never saw the first: it has everything because the client carried it.
    const reader = await stockClient(second.wsUrl, 'failover');
    assert.equal(reader.doc.getText('text').toString(), 'on first; while moving; on second');
    assert.equal(textOf(handle), 'on first; while moving; on second');
    const stored = (await (await fetch(`${second.url}/v1/docs/failover`)).json()) as {
      text: string;
    };
    assert.equal(stored.text, 'on first; while moving; on second');

    reader.destroy();
    await client.destroy();
    await second.close();
  });

  it('starts on the second URL when the first cannot be reached, and uses it for new documents', async () => {
    const dead = await startNode();
    const deadUrl = dead.wsUrl;
    await dead.close();
    const live = await startNode();
    const client = sdkClient({ urls: [deadUrl, live.wsUrl] });
    const a = client.open('reach-a');
    await waitFor(() => a.isSynced, 'a to sync on the reachable node', 5000);
    assert.equal(a.url, live.wsUrl);
    // The client remembers which node works: the next document goes there directly.
    const b = client.open('reach-b');
    await b.synced;
    assert.equal(b.url, live.wsUrl);
    await client.destroy();
    await live.close();
  });
});
