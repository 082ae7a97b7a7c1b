/**
 * The one call shape (functions/function-call.ts): what every edge (HTTP, a
 * WebSocket Invoke, a forwarded call, a schedule) checks when it builds a call,
 * what goes to another node, and which right a call needs.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Grant } from '../src/auth/grant.js';
import { StateweaveError } from '../src/errors.js';
import {
  authorizeCall,
  forwardedOf,
  functionCall,
  MAX_IDEMPOTENCY_KEY_CHARS,
  type CallForwarder,
} from '../src/functions/function-call.js';

const grant = (rights: Grant['rights'], docs = ['team/*']): Grant => ({
  subject: 'alice',
  docs,
  rights,
});
const EVERYTHING = grant(new Set(['read', 'write', 'invoke', 'admin']));

const refusedWith = (code: string) => (err: unknown) =>
  err instanceof StateweaveError && err.code === code;

describe('functionCall: a call built at the edge', () => {
  it('parses the input once; an empty or blank body is no input', () => {
    const call = functionCall({ name: 'f', body: '{"n":[1,2]}', grant: EVERYTHING });
    assert.deepEqual(call.input, { n: [1, 2] });
    assert.equal(call.body, '{"n":[1,2]}', 'the text is kept byte for byte for forwarding');
    assert.equal(functionCall({ name: 'f', body: '', grant: EVERYTHING }).input, undefined);
    assert.equal(functionCall({ name: 'f', body: ' \n', grant: EVERYTHING }).input, undefined);
  });

  it('refuses input that is not JSON, or nests too deep, before anything runs', () => {
    assert.throws(
      () => functionCall({ name: 'f', body: '{"n":', grant: EVERYTHING }),
      refusedWith('BAD_REQUEST'),
    );
    const deep = '['.repeat(100) + ']'.repeat(100);
    assert.throws(
      () => functionCall({ name: 'f', body: deep, grant: EVERYTHING }),
      refusedWith('INPUT_TOO_DEEP'),
    );
  });

  it('takes an idempotency key of 1 to MAX_IDEMPOTENCY_KEY_CHARS characters', () => {
    const longest = 'k'.repeat(MAX_IDEMPOTENCY_KEY_CHARS);
    const call = functionCall({ name: 'f', body: '', idempotencyKey: longest, grant: EVERYTHING });
    assert.equal(call.idempotencyKey, longest);
    for (const key of ['', `${longest}k`])
      assert.throws(
        () => functionCall({ name: 'f', body: '', idempotencyKey: key, grant: EVERYTHING }),
        refusedWith('BAD_REQUEST'),
        `key of ${key.length} characters`,
      );
  });

  it('sends another node the call as it arrived, without this node’s grant or forwarder', () => {
    const forwarder: CallForwarder = {
      forward: () => Promise.reject(new Error('not called here')),
    };
    const call = functionCall({
      name: 'f',
      body: '{"a":1}',
      idempotencyKey: 'k1',
      authorization: 'Bearer t',
      grant: EVERYTHING,
      forwarder,
    });
    assert.deepEqual(forwardedOf(call), {
      name: 'f',
      body: '{"a":1}',
      idempotencyKey: 'k1',
      authorization: 'Bearer t',
    });
    assert.deepEqual(forwardedOf(functionCall({ name: 'g', body: '', grant: EVERYTHING })), {
      name: 'g',
      body: '',
    });
  });
});

describe('authorizeCall: the right a call needs on its document', () => {
  it('a query needs read, a mutation needs invoke, both on a covered document', () => {
    const reader = functionCall({ name: 'f', body: '', grant: grant(new Set(['read'])) });
    const invoker = functionCall({ name: 'f', body: '', grant: grant(new Set(['invoke'])) });
    authorizeCall(reader, 'team/a', 'query');
    authorizeCall(invoker, 'team/a', 'mutation');
    assert.throws(() => authorizeCall(reader, 'team/a', 'mutation'), refusedWith('FORBIDDEN'));
    assert.throws(() => authorizeCall(invoker, 'team/a', 'query'), refusedWith('FORBIDDEN'));
    assert.throws(() => authorizeCall(invoker, 'other/a', 'mutation'), refusedWith('FORBIDDEN'));
  });

  it('refuses a call whose grant expired after it was built', () => {
    const call = functionCall({
      name: 'f',
      body: '',
      grant: { ...EVERYTHING, docs: ['*'], expiresAt: Date.now() - 1 },
    });
    assert.throws(() => authorizeCall(call, 'team/a', 'mutation'), refusedWith('TOKEN_EXPIRED'));
  });
});
