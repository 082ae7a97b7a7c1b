/**
 * The demo on a node with auth (the README's Security walkthrough ends here):
 * without a token the page says so in a visible banner, never shows "saved" and
 * tells why the editor is read-only; with a token minted by the CLI it edits and
 * saves.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  mintToken,
  nodeAndBrowser,
  screenshot,
  uniqueSpace,
  waitForEditor,
  waitForText,
} from './harness.js';

const SECRET = 'e2e-secret-of-at-least-32-bytes-long!';

describe('demo under auth', { timeout: 120_000 }, () => {
  const session = nodeAndBrowser({ STATEWEAVE_AUTH_SECRET: SECRET });
  const openPage = (path: string) => session.page(path);

  it('without a token: a visible refusal, no "saved", and a read-only editor that says why', async () => {
    const page = await openPage(`/?space=${uniqueSpace('auth')}&name=Eve#editor`);
    await waitForText(page, '[data-testid="refusal"]', 'UNAUTHORIZED', { contains: true });
    assert.equal(await page.locator('[data-testid="refusal"]').isVisible(), true);
    await waitForText(page, '[data-testid="refusal"]', '?token=', { contains: true });
    await waitForText(page, '[data-testid="save-state"]', 'not synced');
    await page.waitForFunction(() => {
      const editor = document.querySelector<HTMLElement>('[data-testid="editor-text"]');
      return editor?.getAttribute('contenteditable') === 'false' && editor.dataset.refused;
    });
    await waitForText(page, '[data-testid="editor-notice"]', 'Read-only: ', { contains: true });
    const badge = await page.locator('[data-testid="connection"]').textContent();
    assert.notEqual(badge, 'connected', 'a refused page must not say connected');
    await screenshot(page, 'auth-refused');
  });

  it('with a token from `stateweave token`: edits and "saved"', async () => {
    const space = uniqueSpace('auth');
    const token = mintToken(SECRET, '*', 'read,write,invoke');
    const page = await openPage(
      `/?space=${space}&name=Ada&token=${encodeURIComponent(token)}#editor`,
    );
    await waitForText(page, '[data-testid="connection"]', 'connected');
    const editor = page.locator('[data-testid="editor-text"][contenteditable="true"]');
    await editor.click();
    await page.keyboard.type('hello with a token');
    await waitForEditor(page, 'hello with a token');
    await waitForText(page, '[data-testid="save-state"]', 'saved');
    assert.equal(await page.locator('[data-testid="refusal"]').isVisible(), false);
    const stored = await fetch(`${session.node.url}/v1/docs/notes/${space}`, {
      headers: { authorization: `Bearer ${token}` },
    });
    assert.deepEqual(await stored.json(), { default: '<paragraph>hello with a token</paragraph>' });
  });
});
