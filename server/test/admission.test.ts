/**
 * Connection admission (issue 17, item 1) on real sockets: per-address limits
 * count the client behind a trusted proxy, forwarding headers from anyone else
 * are ignored, the node-wide cap answers 503, and health, readiness and metrics
 * are never refused by any connection limit.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import type { WebSocket } from 'ws';
import { createClientAddressOf, parseTrustedProxies } from '../src/transport/client-address.js';
import { startNode, tempDir, type TestNode } from './helpers/node.js';
import { closeAll, tryUpgrade } from './helpers/upgrade.js';
import { waitFor } from './helpers/wait.js';

const PER_IP = 3;

/** A node on a LevelDB store in a fresh temp dir; `stop` closes it and removes the dir. */
const startLevelNode = async (
  options: Parameters<typeof startNode>[0],
): Promise<{ node: TestNode; stop: () => Promise<void> }> => {
  const dir = await tempDir();
  const node = await startNode({ ...options, dataDir: dir.path });
  return {
    node,
    stop: async () => {
      await node.close();
      await dir.remove();
    },
  };
};

const requestFrom = (remoteAddress: string, headers: Record<string, string>): IncomingMessage =>
  ({ socket: { remoteAddress }, headers }) as unknown as IncomingMessage;

describe('client addresses', () => {
  it('believes forwarding headers only from trusted proxies, taking the first untrusted hop', () => {
    const addressOf = createClientAddressOf(['10.0.0.0/8', '::1']);
    const xff = { 'x-forwarded-for': '198.51.100.9, 203.0.113.7, 10.1.2.3' };
    assert.equal(addressOf(requestFrom('10.0.0.2', xff)), '203.0.113.7');
    assert.equal(addressOf(requestFrom('::ffff:10.0.0.2', xff)), '203.0.113.7');
    assert.equal(addressOf(requestFrom('192.0.2.1', xff)), '192.0.2.1');
    const forwarded = { forwarded: 'for=198.51.100.9, for="[2001:db8::1]:4711";proto=https' };
    assert.equal(addressOf(requestFrom('::1', forwarded)), '2001:db8::1');
    // An obfuscated or malformed hop ends the walk at the last proxy that vouched.
    assert.equal(addressOf(requestFrom('10.0.0.2', { forwarded: 'for=_hidden' })), '10.0.0.2');
    assert.equal(addressOf(requestFrom('10.0.0.2', {})), '10.0.0.2');
    // Without trusted proxies the headers mean nothing.
    assert.equal(createClientAddressOf([])(requestFrom('10.0.0.2', xff)), '10.0.0.2');
  });

  it('refuses a malformed range instead of trusting nobody silently', () => {
    for (const bad of ['10.0.0.0/33', 'proxy.local', '10.0.0.1/8/1', '::1/129', ''])
      assert.throws(() => parseTrustedProxies([bad]), /trust-proxy/, bad);
    assert.doesNotThrow(() => parseTrustedProxies(['127.0.0.1', '10.0.0.0/8', 'fd00::/8']));
  });
});

describe('admission behind a trusted proxy', () => {
  let node: TestNode;
  let stop: () => Promise<void>;
  const open: WebSocket[] = [];
  before(async () => {
    ({ node, stop } = await startLevelNode({
      trustProxy: ['127.0.0.1'],
      maxConnectionsPerIp: PER_IP,
    }));
  });
  after(async () => {
    await closeAll(open);
    await stop();
  });

  it('counts each forwarded client on its own, and refuses the one past its cap', async () => {
    const CLIENTS = 20;
    for (let c = 0; c < CLIENTS; c++) {
      for (let i = 0; i < PER_IP; i++) {
        // Each client may write anything left of the proxy's entry: it proves nothing.
        const headers = { 'x-forwarded-for': `192.0.2.${i}, 203.0.113.${c}` };
        const result = await tryUpgrade(`${node.wsUrl}/proxied-${c}`, headers);
        assert.equal(result.open, true, `client ${c}, connection ${i}`);
        if (result.open) open.push(result.ws);
      }
    }
    // 60 sockets from one proxy address, with a per-address cap of 3.
    assert.equal(open.length, CLIENTS * PER_IP);
    const extra = await tryUpgrade(`${node.wsUrl}/proxied-0`, {
      'x-forwarded-for': '203.0.113.0',
    });
    assert.deepEqual(extra, { open: false, status: 429, code: 'TOO_MANY_CONNECTIONS' });
    const viaForwarded = await tryUpgrade(`${node.wsUrl}/proxied-0`, {
      forwarded: 'for=203.0.113.0',
    });
    assert.deepEqual(viaForwarded, { open: false, status: 429, code: 'TOO_MANY_CONNECTIONS' });
  });

  it('never refuses /healthz, /readyz or /metrics while the address is at its cap', async () => {
    for (const path of ['/healthz', '/readyz', '/metrics']) {
      const res = await fetch(`${node.url}${path}`, {
        headers: { 'x-forwarded-for': '203.0.113.0' },
        signal: AbortSignal.timeout(5000),
      });
      assert.equal(res.status, 200, path);
      await res.arrayBuffer();
    }
  });
});

describe('admission without a trusted proxy', () => {
  let node: TestNode;
  let stop: () => Promise<void>;
  before(async () => {
    ({ node, stop } = await startLevelNode({ maxConnectionsPerIp: PER_IP }));
  });
  after(() => stop());

  it('ignores forwarding headers, so a client cannot pose as many', async () => {
    const open: WebSocket[] = [];
    try {
      for (let i = 0; i < PER_IP; i++) {
        const result = await tryUpgrade(`${node.wsUrl}/direct`, {
          'x-forwarded-for': `203.0.113.${i}`,
        });
        assert.equal(result.open, true);
        if (result.open) open.push(result.ws);
      }
      const spoofed = await tryUpgrade(`${node.wsUrl}/direct`, {
        'x-forwarded-for': '198.51.100.77',
        forwarded: 'for=198.51.100.78',
      });
      assert.deepEqual(spoofed, { open: false, status: 429, code: 'TOO_MANY_CONNECTIONS' });
    } finally {
      await closeAll(open);
    }
  });
});

describe('the node-wide connection cap', () => {
  const MAX = 5;
  let node: TestNode;
  let stop: () => Promise<void>;
  before(async () => {
    ({ node, stop } = await startLevelNode({ maxConnections: MAX, maxConnectionsPerIp: 1000 }));
  });
  after(() => stop());

  it('answers 503 NODE_FULL beyond maxConnections, serves health meanwhile, and admits again after a close', async () => {
    const open: WebSocket[] = [];
    try {
      for (let i = 0; i < MAX; i++) {
        const result = await tryUpgrade(`${node.wsUrl}/full-${i}`);
        assert.equal(result.open, true);
        if (result.open) open.push(result.ws);
      }
      let refused = 0;
      for (let i = 0; i < 20; i++) {
        const result = await tryUpgrade(`${node.wsUrl}/full-extra`);
        assert.deepEqual(result, { open: false, status: 503, code: 'NODE_FULL' });
        refused++;
      }
      assert.equal(refused, 20);
      for (const path of ['/healthz', '/readyz', '/metrics']) {
        const res = await fetch(`${node.url}${path}`, { signal: AbortSignal.timeout(5000) });
        assert.equal(res.status, 200, path);
        await res.arrayBuffer();
      }
      await closeAll(open.splice(0, 1));
      const again = await waitFor(async () => {
        const result = await tryUpgrade(`${node.wsUrl}/full-again`);
        if (result.open) return result;
        return undefined;
      }, 'a free slot after one connection closed');
      open.push(again.ws);
    } finally {
      await closeAll(open);
    }
  });
});
