/** Two browsers on two nodes of one cluster edit the same document and see each other. */
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { Browser, BrowserContext } from 'playwright-core';
import {
  freePort,
  launchBrowser,
  newContext,
  openDemo,
  screenshot,
  startNode,
  tempDir,
  uniqueSpace,
  until,
  waitForEditor,
  waitForText,
  type NodeProcess,
} from './harness.js';

const EDITOR = '[data-testid="editor-text"]';

describe('cluster', { timeout: 180_000 }, () => {
  let browser: Browser;
  const nodes: NodeProcess[] = [];
  const dirs: Array<{ remove: () => Promise<void> }> = [];
  const contexts: BrowserContext[] = [];

  before(async () => {
    const ports = [await freePort(), await freePort()];
    const env = { STATEWEAVE_PEER_SECRET: randomBytes(24).toString('base64url') };
    for (const [i, port] of ports.entries()) {
      const dir = await tempDir();
      dirs.push(dir);
      const peers = ports.filter((p) => p !== port).map((p) => `ws://127.0.0.1:${p}`);
      nodes.push(
        await startNode(
          dir.path,
          port,
          ['--node-id', `n${i + 1}`, '--peers', peers.join(',')],
          env,
        ),
      );
    }
    for (const node of nodes) {
      await until(`${node.url} to link with its peer`, async () => {
        const status = (await (await fetch(`${node.url}/v1/cluster`)).json()) as {
          peers?: Array<{ state?: string }>;
        };
        return (
          (status.peers ?? []).length > 0 &&
          (status.peers ?? []).every((p) => p.state === 'connected')
        );
      });
    }
    browser = await launchBrowser();
  });

  after(async () => {
    for (const context of contexts) await context.close().catch(() => undefined);
    await browser?.close();
    for (const node of nodes) await node.stop();
    for (const dir of dirs) await dir.remove();
  });

  it("two browsers connected to two different nodes see each other's edits and presence", async () => {
    const space = uniqueSpace('cluster');
    const pages = [];
    for (const [i, name] of ['Nora', 'Omar'].entries()) {
      const context = await newContext(browser);
      contexts.push(context);
      const page = await openDemo(context, nodes[i]!.url, space, 'editor', name);
      await page.locator(`${EDITOR}[contenteditable="true"]`).waitFor();
      pages.push(page);
    }
    const [a, b] = pages as [(typeof pages)[0], (typeof pages)[0]];
    await a.locator(EDITOR).click();
    await a.keyboard.type('typed on n1');
    await waitForEditor(b, 'typed on n1', 20_000);
    await b.locator(EDITOR).click();
    await b.locator(EDITOR).press('Control+End');
    await b.keyboard.type(', answered on n2');
    await waitForEditor(a, 'typed on n1, answered on n2', 20_000);
    await a.locator('[data-testid="presence"][data-name="Omar"]').waitFor({ timeout: 20_000 });
    await b.locator('[data-testid="presence"][data-name="Nora"]').waitFor({ timeout: 20_000 });
    await waitForText(a, '[data-testid="save-state"]', 'saved');
    await waitForText(b, '[data-testid="save-state"]', 'saved');
    await screenshot(b, 'editor-cluster');
  });
});
