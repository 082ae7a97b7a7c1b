/**
 * The stock `@hocuspocus/provider`, bundled by Vite like the demo
 * (demo-app/hocuspocus.html), and the SDK's demo page edit the same document
 * on a node with auth: each sees the other's text and presence, and a document
 * the Hocuspocus page's token does not grant is refused alone, on the same
 * socket that keeps syncing the notes.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import {
  mintToken,
  nodeAndBrowser,
  openDemo,
  uniqueSpace,
  waitForEditor,
  waitForText,
  screenshot,
} from './harness.js';

const SECRET = 'e2e-secret-of-at-least-32-bytes-long!';
const EDITOR = '[data-testid="editor-text"]';
/** A remote caret's name, drawn in the text by the collaboration-caret extension. */
const CARET_LABEL = '.collaboration-carets__label';
const EDITABLE = `${EDITOR}[contenteditable="true"]`;

const mint = (docs: string, rights: string): string => mintToken(SECRET, docs, rights);

describe('stock Hocuspocus provider next to the SDK, in the browser', { timeout: 120_000 }, () => {
  const session = nodeAndBrowser({ STATEWEAVE_AUTH_SECRET: SECRET });
  const { context } = session;

  it('edits one document together with the SDK page; a refused document is refused alone', async () => {
    const space = uniqueSpace('hocus');
    // The Hocuspocus page may write the notes only; `secret/…` is outside its token.
    const hocusToken = mint(`notes/${space}`, 'read,write');
    const sdkToken = mint('*', 'read,write,invoke');

    const hocusContext = await context();
    const hocus: Page = await hocusContext.newPage();
    hocus.setDefaultTimeout(15_000);
    const sockets: string[] = [];
    hocus.on('websocket', (ws) => sockets.push(ws.url()));
    await hocus.goto(
      `${session.node.url}/hocuspocus.html?space=${space}&name=Hana&token=${encodeURIComponent(hocusToken)}` +
        `&also=${encodeURIComponent(`secret/${space}`)}`,
      { timeout: 15_000 },
    );
    const notesState = `[data-testid="doc-status"][data-doc="notes/${space}"] [data-testid="state"]`;
    const secretState = `[data-testid="doc-status"][data-doc="secret/${space}"] [data-testid="state"]`;
    await waitForText(hocus, secretState, 'refused: ', { contains: true });
    await waitForText(hocus, notesState, 'synced');
    await hocus.locator(EDITABLE).waitFor();

    const sdk = await openDemo(await context(), session.node.url, space, 'editor', 'Sam', {
      token: sdkToken,
    });
    await sdk.locator(EDITABLE).waitFor();

    // Presence both ways: the lists, and the carets drawn with names.
    await sdk.locator('[data-testid="presence"][data-name="Hana"]').waitFor();
    await hocus.locator('[data-testid="presence"][data-name="Sam"]').waitFor();

    await hocus.locator(EDITOR).click();
    await hocus.keyboard.type('from the stock provider');
    await waitForEditor(sdk, 'from the stock provider');
    await sdk.locator(EDITOR).click();
    await sdk.locator(EDITOR).press('Control+End');
    await sdk.keyboard.type(', and from the SDK');
    await waitForEditor(hocus, 'from the stock provider, and from the SDK');
    await waitForText(sdk, '[data-testid="save-state"]', 'saved');
    await waitForText(hocus, CARET_LABEL, 'Sam');
    await waitForText(sdk, CARET_LABEL, 'Hana');

    // The refusal stayed with its document: one socket, still open, the notes still synced.
    assert.equal(sockets.length, 1, sockets.join(', '));
    assert.match(sockets[0]!, /^ws:\/\/127\.0\.0\.1:\d+\/?$/);
    await waitForText(hocus, '[data-testid="connection"]', 'connected');
    await waitForText(hocus, secretState, 'refused: ', { contains: true });
    await waitForText(hocus, notesState, 'synced');
    await screenshot(hocus, 'hocuspocus-provider');

    const stored = await fetch(`${session.node.url}/v1/docs/notes/${space}`, {
      headers: { authorization: `Bearer ${sdkToken}` },
    });
    assert.deepEqual(await stored.json(), {
      default: '<paragraph>from the stock provider, and from the SDK</paragraph>',
    });
  });
});
