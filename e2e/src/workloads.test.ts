/**
 * The other three workloads in real browsers against a real node: live analytics
 * (trackVisit), the sensor join (joinSensors) and permission lookups (can).
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { nodeAndBrowser, openDemo, screenshot, uniqueSpace, waitForText } from './harness.js';

describe('workloads', { timeout: 180_000 }, () => {
  const session = nodeAndBrowser();

  const open = async (space: string, view: string, name: string): Promise<Page> =>
    openDemo(await session.context(), session.node.url, space, view, name);

  it('analytics: visits from three browsers show three unique visitors in all of them', async () => {
    const space = uniqueSpace('visits');
    const unique = (page: string): string =>
      `[data-testid="visits-${page}"] [data-testid="unique"]`;
    const pages: Page[] = [];
    for (const name of ['Ann', 'Ben', 'Cy']) pages.push(await open(space, 'analytics', name));
    for (const page of pages) await waitForText(page, unique('analytics'), '3');

    // A reload is the same visitor; a view of another page counts there.
    await pages[0]!.reload();
    await waitForText(pages[0]!, '[data-testid="connection"]', 'connected');
    await pages[1]!.goto(`${session.node.url}/?space=${space}&name=Ben#sensors`);
    await pages[1]!.goto(`${session.node.url}/?space=${space}&name=Ben#analytics`);
    for (const page of pages) {
      await waitForText(page, unique('sensors'), '1');
      await waitForText(page, unique('analytics'), '3');
      await waitForText(page, unique('editor'), '0');
      await waitForText(page, '[data-testid="visitors-total"]', '3');
    }
    // The chart draws one line per page, named in its legend.
    await pages[0]!.locator('[data-testid="visits-chart"] canvas').waitFor();
    await waitForText(pages[0]!, '[data-testid="visits-chart"] .u-legend', 'permissions', {
      contains: true,
    });
    await screenshot(pages[0]!, 'analytics');
  });

  it('analytics: simulated traffic goes through trackVisit, with calls/s and p50/p99 as it runs', async () => {
    const space = uniqueSpace('traffic');
    const unique = (page: string): string =>
      `[data-testid="visits-${page}"] [data-testid="unique"]`;
    const page = await open(space, 'analytics', 'Ann');
    const watcher = await open(space, 'analytics', 'Ben');
    await waitForText(page, unique('analytics'), '2');

    // 12 visitors a second for 3 s: 36 calls, 9 per page, all new visitors.
    await page.locator('[data-testid="traffic-rate-input"]').fill('12');
    await page.locator('[data-testid="traffic-seconds-input"]').fill('3');
    await page.locator('[data-testid="traffic-start"]').click();
    const figures = '[data-testid="traffic-figures"]';
    await page.locator(`${figures}[data-state="running"]`).waitFor();
    await page.locator(`${figures}[data-state="done"]`).waitFor({ timeout: 30_000 });
    assert.equal(await page.locator('[data-testid="traffic-answered"]').textContent(), '36/36');
    assert.match(
      (await page.locator('[data-testid="traffic-rate"]').textContent()) ?? '',
      /^\d+\.\d$/,
    );
    for (const figure of ['p50', 'p99'])
      assert.match(
        (await page.locator(`[data-testid="traffic-${figure}"]`).textContent()) ?? '',
        /^[\d.]+ ms$/,
        figure,
      );
    assert.equal(await page.locator('[data-testid="traffic-problems"]').count(), 0);

    // The visitors reached the documents: every browser's table and chart count them.
    for (const p of [page, watcher]) {
      await waitForText(p, unique('editor'), '9');
      await waitForText(p, unique('sensors'), '9');
      await waitForText(p, unique('permissions'), '9');
      await waitForText(p, unique('analytics'), '11');
      await p.locator('[data-testid="visits-chart"][data-visits="38"] canvas').waitFor();
    }
    await screenshot(page, 'analytics-traffic');
  });

  it('sensors: readings within the window are joined into pairs, live in every browser', async () => {
    const space = uniqueSpace('sensors');
    const page = await open(space, 'sensors', 'Ann');
    const watcher = await open(space, 'sensors', 'Ben');
    const count = (which: string): string => `[data-testid="${which}-count"]`;

    await page.locator('[data-testid="send-a"]').click();
    await page.locator('[data-testid="send-b"]').click();
    await waitForText(page, count('reading'), '2');
    await waitForText(page, count('pair'), '1');

    await sleep(1600); // beyond the 1000 ms window
    await page.locator('[data-testid="send-b"]').click();
    await waitForText(page, count('reading'), '3');
    await page.locator('[data-testid="send-a"]').click();
    await waitForText(page, count('reading'), '4');
    await waitForText(page, count('pair'), '2');
    for (const p of [page, watcher]) {
      await waitForText(p, count('pair'), '2');
      await p.locator('[data-testid="pair"]').nth(1).waitFor();
      const keys = await p
        .locator('[data-testid="pair"]')
        .evaluateAll((rows) => rows.map((r) => (r as HTMLElement).dataset.key ?? '').sort());
      assert.equal(keys.length, 2);
      // a1 with b1, a2 with b2 — never across the gap.
      assert.match(keys[0]!, /^a1-\w+\|b1-\w+$/);
      assert.match(keys[1]!, /^a2-\w+\|b2-\w+$/);
      // The chart draws both streams and marks the two pairs.
      await p
        .locator('[data-testid="sensors-chart"][data-readings="4"][data-pairs="2"] canvas')
        .waitFor();
      await waitForText(p, '[data-testid="sensors-chart"] .u-legend', 'sensor B', {
        contains: true,
      });
    }
    await screenshot(page, 'sensors');
  });

  it('permissions: the can query answers from the ACL edited in the browser, with its latency', async () => {
    const space = uniqueSpace('acl');
    const page = await open(space, 'permissions', 'Ann');
    const other = await open(space, 'permissions', 'Ben');

    const grant = async (subject: string, actions: string): Promise<void> => {
      await page.locator('[data-testid="grant-subject"]').fill(subject);
      await page.locator('[data-testid="grant-actions"]').fill(actions);
      await page.locator('[data-testid="grant-add"]').click();
      await page.locator(`[data-testid="grant"][data-subject="${subject}"]`).waitFor();
    };
    const ask = async (
      subject: string,
      action: string,
      expected: 'allowed' | 'denied',
    ): Promise<void> => {
      await page.locator('[data-testid="can-subject"]').fill(subject);
      await page.locator('[data-testid="can-action"]').fill(action);
      await page.locator('[data-testid="can-ask"]').click();
      await page
        .locator(`[data-testid="can-answer"][data-question="${subject}:${action}"]`)
        .waitFor();
      assert.equal(
        await page.locator('[data-testid="can-answer"]').getAttribute('data-state'),
        expected,
        `${subject} ${action}`,
      );
      assert.match(
        (await page.locator('[data-testid="can-latency"]').textContent()) ?? '',
        /^answered in [\d.]+ ms$/,
      );
    };

    await grant('alice', 'read, write');
    await grant('bob', '*');
    await waitForText(page, '[data-testid="acl-save-state"]', 'saved');
    await other.locator('[data-testid="grant"][data-subject="bob"]').waitFor();

    await ask('alice', 'write', 'allowed');
    await ask('alice', 'delete', 'denied');
    await ask('bob', 'delete', 'allowed');
    await ask('carol', 'read', 'denied');
    // Each answered lookup is a point of the latency chart, with p50/p99 over them.
    await waitForText(page, '[data-testid="can-lookups-count"]', '4');
    await page.locator('[data-testid="can-lookups-chart"][data-samples="4"] canvas').waitFor();
    await page.locator('[data-testid="can-measure"]').click();
    await waitForText(page, '[data-testid="can-lookups-count"]', '54', { timeout: 30_000 });
    for (const figure of ['p50', 'p99'])
      assert.match(
        (await page.locator(`[data-testid="can-lookups-${figure}"]`).textContent()) ?? '',
        /^[\d.]+ ms$/,
        figure,
      );
    await screenshot(page, 'permissions');

    await page.locator('[data-testid="grant"][data-subject="bob"] button').click();
    await waitForText(page, '[data-testid="acl-save-state"]', 'saved');
    await other.locator('[data-testid="grant"][data-subject="bob"]').waitFor({ state: 'detached' });
    await ask('alice', 'read', 'allowed');
    await ask('bob', 'delete', 'denied');
  });
});
