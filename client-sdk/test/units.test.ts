/** The SDK's pure parts: pending accounting, close-code decisions, token expiry, names, URLs. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createSavedTracker } from '../dist/src/saved-tracker.js';
import { closeAction, errorFromClose } from '../dist/src/errors.js';
import { createTokenSource, jwtExpiryMs } from '../dist/src/token-source.js';
import { docPath, validateDocName } from '../dist/src/doc-name.js';
import { httpBaseFor, normalizeNodeUrl, socketUrl } from '../dist/src/urls.js';

describe('pending accounting (saved tracker)', () => {
  it('acknowledges a local update only through a message that carried it', () => {
    const t = createSavedTracker();
    t.local(); // made offline
    t.local();
    assert.equal(t.pending, 2);
    t.reset(); // connected
    assert.equal(t.sent(), 1); // our step 2: carries both
    t.local();
    assert.equal(t.sent(), 2); // the third, sent as an update
    assert.equal(t.ack(1), true);
    assert.equal(t.pending, 1);
    assert.equal(t.ack(1), false, 'a repeated ack changes nothing');
    t.ack(2);
    assert.equal(t.pending, 0);
  });

  it('forgets unacknowledged marks on a new connection; its step 2 covers them again', () => {
    const t = createSavedTracker();
    t.reset();
    t.sent(); // step 2, nothing local yet
    t.local();
    t.sent(); // seq 2
    t.reset(); // the socket dropped before the ack
    assert.equal(t.ack(2), false, 'an ack numbered on the old connection means nothing now');
    t.local(); // made while reconnecting
    assert.equal(t.sent(), 1); // new step 2 carries both
    t.ack(1);
    assert.equal(t.pending, 0);
  });

  it('stays conservative when marks pile up unacknowledged', () => {
    const t = createSavedTracker();
    t.reset();
    for (let i = 0; i < 2000; i++) {
      t.local();
      t.sent();
    }
    t.ack(10); // its mark was dropped: pending does not go down on its account
    assert.equal(t.pending, 2000);
    t.ack(2000);
    assert.equal(t.pending, 0);
  });
});

describe('close codes', () => {
  it('decides per code: token, terminal, failover or retry', () => {
    assert.equal(closeAction(4401), 'token');
    assert.equal(closeAction(4419), 'token');
    for (const code of [4400, 4403, 4413, 4415, 4422])
      assert.equal(closeAction(code), 'terminal', String(code));
    assert.equal(closeAction(1001), 'failover');
    for (const code of [1006, 1011, 1009, 4408, 4409, 4429, 4503, 4507])
      assert.equal(closeAction(code), 'retry', String(code));
  });

  it('reads the node code and message from the close reason', () => {
    const e = errorFromClose(4413, 'DOC_TOO_LARGE: notes would exceed 100 bytes');
    assert.equal(e.code, 'DOC_TOO_LARGE');
    assert.equal(e.message, 'notes would exceed 100 bytes');
    assert.equal(e.closeCode, 4413);
    assert.equal(errorFromClose(1006, '').code, 'CLOSE_1006');
  });
});

describe('tokens', () => {
  const jwt = (payload: object) =>
    `e30.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.x`;

  it('reads exp from a JWT and nothing from an opaque token', () => {
    assert.equal(jwtExpiryMs(jwt({ exp: 1700000000 })), 1700000000_000);
    assert.equal(jwtExpiryMs(jwt({ sub: 'x' })), undefined);
    assert.equal(jwtExpiryMs('opaque-token'), undefined);
    assert.equal(jwtExpiryMs('a.%%%.c'), undefined);
  });

  it('reuses a token until it is near expiry, then fetches a new one', async () => {
    let now = 1_000_000;
    let calls = 0;
    const source = createTokenSource({
      getToken: () => jwt({ n: ++calls, exp: (now + 600_000) / 1000 }),
      refreshMarginMs: 60_000,
      now: () => now,
    });
    const first = await source.get();
    assert.equal(await source.get(), first);
    now += 539_000;
    assert.equal(await source.get(), first, 'still more than the margin left');
    now += 2_000;
    assert.notEqual(await source.get(), first, 'within the margin: a new one');
    assert.equal(calls, 2);
    source.invalidate();
    await source.get();
    assert.equal(calls, 3, 'a refused token is replaced');
    source.destroy();
  });

  it('reports a failing or empty getToken as TOKEN_FAILED', async () => {
    const failing = createTokenSource({
      getToken: () => Promise.reject(new Error('offline')),
      refreshMarginMs: 0,
    });
    await assert.rejects(failing.get(), { code: 'TOKEN_FAILED' });
    const empty = createTokenSource({ getToken: () => '', refreshMarginMs: 0 });
    await assert.rejects(empty.get(), { code: 'TOKEN_FAILED' });
  });
});

describe('names and URLs', () => {
  it('checks document names with the node rules', () => {
    assert.equal(validateDocName('team-42/notes'), 'team-42/notes');
    for (const bad of ['', '/a', 'a/', 'a//b', 'a/../b', 'a b', 'x'.repeat(256), 'é']) {
      assert.throws(() => validateDocName(bad), { code: 'INVALID_DOC_NAME' }, JSON.stringify(bad));
    }
    assert.equal(docPath('a:b/c@d'), 'a%3Ab/c%40d');
  });

  it('derives socket and HTTP URLs', () => {
    assert.equal(normalizeNodeUrl('wss://sync.example.com/'), 'wss://sync.example.com');
    assert.throws(() => normalizeNodeUrl('http://x'), { code: 'INVALID_OPTIONS' });
    assert.throws(() => normalizeNodeUrl('ws://x/?a=1'), { code: 'INVALID_OPTIONS' });
    assert.equal(httpBaseFor('wss://h:1/p'), 'https://h:1/p');
    assert.equal(httpBaseFor('ws://h:1'), 'http://h:1');
    assert.equal(socketUrl('ws://h', 'a/b', 'x y&z'), 'ws://h/a/b?token=x%20y%26z');
    assert.equal(socketUrl('ws://h', 'a', undefined), 'ws://h/a');
  });
});
