/**
 * What a caller reads when a function call is refused: one sentence, not a
 * validator's JSON dump, and a parse error with its position.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { startNode, type TestNode } from './helpers/node.js';

const VALIDATED = fileURLToPath(new URL('../../test/fixtures/validated', import.meta.url));

describe('function call errors, as sentences', () => {
  let node: TestNode;
  before(async () => {
    node = await startNode({ functionsDir: VALIDATED });
  });
  after(() => node.close());

  const call = async (body: string) => {
    const res = await fetch(`${node.url}/v1/functions/visit/invoke`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  it('turns a zod refusal into "path: message" per issue', async () => {
    const { status, body } = await call(JSON.stringify({ page: 1 }));
    assert.equal(status, 400);
    const error = body.error as { code: string; message: string };
    assert.equal(error.code, 'INVALID_INPUT');
    assert.match(error.message, /^page: .*expected string.*; visitor: .*expected string/i);
    assert.doesNotMatch(error.message, /[[{"]/, 'no JSON in the sentence');
  });

  it('names the position of a JSON syntax error', async () => {
    const { status, body } = await call('{"page": "home",}');
    assert.equal(status, 400);
    assert.match(
      (body.error as { message: string }).message,
      /^the input is not JSON: .*position 16/,
    );
  });

  it('still runs a valid call', async () => {
    const { status, body } = await call(JSON.stringify({ page: 'home', visitor: 'ada' }));
    assert.equal(status, 200);
    assert.deepEqual(body, { unique: 1 });
  });
});
