/**
 * Twenty documents in one tab ride one WebSocket: the SDK's browser bundle in
 * Chromium (served from a plain HTTP server) opens them on a node, whose metrics count one connection
 * (`stateweave_connections`) and twenty documents on it
 * (`stateweave_socket_documents`); closing ten handles releases them on the node.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import type { Browser, BrowserContext } from 'playwright-core';
import {
  launchBrowser,
  newContext,
  startNode,
  tempDir,
  uniqueSpace,
  until,
  type NodeProcess,
} from './harness.js';

const SDK = fileURLToPath(new URL('../../client-sdk/', import.meta.url));
const BUNDLE = join(SDK, 'dist/stateweave-client.js');

/** A page that opens `count` documents with the bundle and reports on `window.sw`. */
const PAGE = `<!doctype html><meta charset="utf-8"><title>20 documents</title>
<script type="module">
  import { createClient } from './stateweave-client.js';
  const params = new URLSearchParams(location.search);
  const prefix = params.get('prefix');
  const count = Number(params.get('count'));
  const client = createClient({ url: params.get('node') });
  const handles = Array.from({ length: count }, (_, i) => client.open(prefix + '/' + i));
  await Promise.all(handles.map((h) => h.synced));
  handles.forEach((h, i) => h.doc.getText('t').insert(0, 'doc ' + i));
  window.sw = {
    saved: () => handles.every((h) => h.pending === 0),
    close: (n) => Promise.all(handles.slice(0, n).map((h) => h.close())),
  };
  document.body.dataset.state = 'synced';
</script>`;

/** One gauge's value from the node's Prometheus text. */
const gauge = async (base: string, name: string): Promise<number> => {
  const text = await (await fetch(`${base}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  if (!line) throw new Error(`${name} is not in /metrics`);
  return Number(line.slice(name.length + 1));
};

describe('many documents in one tab', { timeout: 120_000 }, () => {
  let browser: Browser;
  let node: NodeProcess;
  let data: { path: string; remove: () => Promise<void> };
  let pages: Server;
  let pagesUrl: string;
  const contexts: BrowserContext[] = [];

  before(async () => {
    if (!existsSync(BUNDLE)) execFileSync(process.execPath, ['scripts/bundle.mjs'], { cwd: SDK });
    // The test page and the bundle from a server of their own on 127.0.0.1 (Chromium
    // lets a page on a loopback address open a socket to another loopback port).
    const bundle = await readFile(BUNDLE);
    pages = createServer((req, res) => {
      const js = req.url === '/stateweave-client.js';
      res.writeHead(js || req.url?.startsWith('/page.html') ? 200 : 404, {
        'content-type': js ? 'text/javascript' : 'text/html',
      });
      res.end(js ? bundle : PAGE);
    });
    await new Promise<void>((resolve) => pages.listen(0, '127.0.0.1', resolve));
    pagesUrl = `http://127.0.0.1:${(pages.address() as AddressInfo).port}`;
    data = await tempDir();
    node = await startNode(data.path);
    browser = await launchBrowser();
  });

  after(async () => {
    for (const context of contexts) await context.close().catch(() => undefined);
    await browser?.close();
    await new Promise((resolve) => pages?.close(resolve));
    await node?.stop();
    await data?.remove();
  });

  it('opens 20 documents over one WebSocket, counted as such on the node', async () => {
    const context = await newContext(browser);
    contexts.push(context);
    const page = await context.newPage();
    page.setDefaultTimeout(15_000);
    const sockets: string[] = [];
    page.on('websocket', (ws) => sockets.push(ws.url()));
    const prefix = `many/${uniqueSpace('tab')}`;
    const wsUrl = node.url.replace('http:', 'ws:');
    await page.goto(`${pagesUrl}/page.html?prefix=${prefix}&count=20&node=${wsUrl}`);
    const errors: string[] = [];
    page.on('pageerror', (err) => errors.push(err.message));
    // The page shows nothing: wait for the body's mark, not for something visible.
    await page
      .locator('body[data-state="synced"]')
      .waitFor({ state: 'attached' })
      .catch((err: unknown) => {
        throw new Error(`the page did not sync: ${errors.join('; ') || 'no page error'}`, {
          cause: err,
        });
      });
    await page.waitForFunction(() =>
      (window as unknown as { sw: { saved(): boolean } }).sw.saved(),
    );

    assert.equal(sockets.length, 1, sockets.join(', '));
    assert.match(sockets[0]!, /^ws:\/\/127\.0\.0\.1:\d+\/?$/);
    assert.equal(await gauge(node.url, 'stateweave_connections'), 1);
    assert.equal(await gauge(node.url, 'stateweave_socket_documents'), 20);
    const stored = await fetch(`${node.url}/v1/docs/${prefix}/7`);
    assert.deepEqual(await stored.json(), { t: 'doc 7' });

    // Closing a handle unsubscribes it on the node; the socket stays for the rest.
    await page.evaluate(() =>
      (window as unknown as { sw: { close(n: number): Promise<void> } }).sw.close(10),
    );
    await until(
      'ten documents released on the node',
      async () => (await gauge(node.url, 'stateweave_socket_documents')) === 10,
    );
    assert.equal(await gauge(node.url, 'stateweave_connections'), 1);
    assert.equal(sockets.length, 1);
  });
});
