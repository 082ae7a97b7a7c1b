/**
 * The wire protocol module (client-sdk/src/protocol.ts) on its own: every encoder
 * round-trips through its decoder, the standard messages are byte-identical to
 * y-protocols' (drop-in compatibility), and anything that is not exactly one
 * well-formed message is a ProtocolError. Also the error table: close codes are
 * unique unless deliberately shared, in the allowed ranges, and as documented.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as Y from 'yjs';
import * as encoding from 'lib0/encoding';
import * as decoding from 'lib0/decoding';
import * as syncProtocol from 'y-protocols/sync';
import * as awarenessProtocol from 'y-protocols/awareness';
import {
  decodeAwarenessUpdate,
  decodeClientMessage,
  decodeInvokeResult,
  decodeServerExtension,
  encodeAwareness,
  encodeError,
  encodeHello,
  encodeInvoke,
  encodeInvokeError,
  encodeInvokeOk,
  encodeQueryAwareness,
  encodeSaved,
  encodeSyncStep1,
  encodeSyncStep2,
  encodeToken,
  encodeUpdate,
  MessageType,
  PROTOCOL_VERSION,
  ProtocolError,
  SyncType,
} from '@stateweave/client/protocol';
import {
  closeReason,
  ERRORS,
  StateweaveError,
  toStateweaveError,
  type ErrorCode,
} from '../src/errors.js';

const bytes = (...values: number[]): Uint8Array => new Uint8Array(values);

const sampleDoc = (): Y.Doc => {
  const doc = new Y.Doc();
  doc.getText('text').insert(0, 'hello');
  doc.getMap('map').set('k', { nested: [1, 2] });
  return doc;
};

/** What y-protocols itself writes for a message, for byte-level comparison. */
const yProtocols = (write: (encoder: encoding.Encoder) => void): Uint8Array => {
  const encoder = encoding.createEncoder();
  write(encoder);
  return encoding.toUint8Array(encoder);
};

describe('protocol encoders and decoders', () => {
  it('round-trips sync step 1, byte-identical to y-protocols', () => {
    const doc = sampleDoc();
    const sv = Y.encodeStateVector(doc);
    const frame = encodeSyncStep1(sv);
    assert.deepEqual(decodeClientMessage(frame), { type: 'sync-step-1', stateVector: sv });
    const stock = yProtocols((e) => {
      encoding.writeVarUint(e, MessageType.Sync);
      syncProtocol.writeSyncStep1(e, doc);
    });
    assert.deepEqual(frame, stock);
  });

  it('round-trips sync step 2, byte-identical to y-protocols', () => {
    const doc = sampleDoc();
    const update = Y.encodeStateAsUpdate(doc);
    const frame = encodeSyncStep2(update);
    assert.deepEqual(decodeClientMessage(frame), { type: 'sync-step-2', update });
    const stock = yProtocols((e) => {
      encoding.writeVarUint(e, MessageType.Sync);
      syncProtocol.writeSyncStep2(e, doc);
    });
    assert.deepEqual(frame, stock);
  });

  it('round-trips an update, byte-identical to y-protocols', () => {
    const update = Y.encodeStateAsUpdate(sampleDoc());
    const frame = encodeUpdate(update);
    assert.deepEqual(decodeClientMessage(frame), { type: 'update', update });
    const stock = yProtocols((e) => {
      encoding.writeVarUint(e, MessageType.Sync);
      syncProtocol.writeUpdate(e, update);
    });
    assert.deepEqual(frame, stock);
  });

  it('round-trips an awareness message and its update', () => {
    const doc = new Y.Doc();
    const awareness = new awarenessProtocol.Awareness(doc);
    awareness.setLocalState({ user: { name: 'Ada', color: '#f00' }, cursor: null });
    const update = awarenessProtocol.encodeAwarenessUpdate(awareness, [doc.clientID]);
    const frame = encodeAwareness(update);
    assert.deepEqual(decodeClientMessage(frame), { type: 'awareness', update });
    assert.deepEqual(decodeAwarenessUpdate(update), [
      {
        clientId: doc.clientID,
        clock: awareness.meta.get(doc.clientID)!.clock,
        state: awareness.getLocalState(),
      },
    ]);
    // A removal is a null state.
    awareness.setLocalState(null);
    const removal = awarenessProtocol.encodeAwarenessUpdate(awareness, [doc.clientID]);
    assert.equal(decodeAwarenessUpdate(removal)[0]!.state, null);
    awareness.destroy();
    doc.destroy();
  });

  it('round-trips query-awareness', () => {
    const frame = encodeQueryAwareness();
    assert.deepEqual(frame, bytes(MessageType.QueryAwareness));
    assert.deepEqual(decodeClientMessage(frame), { type: 'query-awareness' });
  });

  it('round-trips hello with the current and an explicit version', () => {
    assert.deepEqual(encodeHello(), bytes(0x64, 0x01), 'PROTOCOL.md: 64 01 = hello v1');
    assert.deepEqual(decodeClientMessage(encodeHello()), {
      type: 'hello',
      version: PROTOCOL_VERSION,
    });
    assert.deepEqual(decodeClientMessage(encodeHello(300)), { type: 'hello', version: 300 });
  });

  it('round-trips token, including an empty and a non-ASCII one', () => {
    for (const token of ['eyJhbGciOiJIUzI1NiJ9.e30.sig', '', 'tök€n']) {
      assert.deepEqual(decodeClientMessage(encodeToken(token)), { type: 'token', token });
    }
  });

  it('round-trips saved, including multi-byte sequence numbers', () => {
    assert.deepEqual(encodeSaved(7), bytes(0x65, 0x07), 'PROTOCOL.md: 65 07 = saved through 7');
    for (const seq of [0, 1, 127, 128, 2 ** 31, Number.MAX_SAFE_INTEGER]) {
      assert.deepEqual(decodeServerExtension(encodeSaved(seq)), { type: 'saved', seq });
    }
  });

  it('round-trips error, with non-ASCII text', () => {
    const frame = encodeError('DOC_TOO_LARGE', 'zu groß — 文書');
    assert.deepEqual(decodeServerExtension(frame), {
      type: 'error',
      code: 'DOC_TOO_LARGE',
      message: 'zu groß — 文書',
    });
  });

  it('round-trips invoke: both kinds, with and without a key, non-ASCII and large call ids', () => {
    const calls = [
      { callId: 1, kind: 'invoke', name: 'increment', input: '{"counter":"a"}' },
      { callId: 2 ** 40, kind: 'query', name: 'read', input: '', idempotencyKey: undefined },
      {
        callId: 0,
        kind: 'invoke',
        name: 'bücher/文書',
        input: '{"x":"€"}',
        idempotencyKey: 'schlüssel-1',
      },
    ] as const;
    for (const call of calls) {
      const { idempotencyKey, ...rest } = call as typeof call & { idempotencyKey?: string };
      const expected =
        idempotencyKey === undefined
          ? { type: 'invoke', ...rest }
          : { type: 'invoke', ...rest, idempotencyKey };
      assert.deepEqual(decodeClientMessage(encodeInvoke(call)), expected);
    }
    // An empty key is no key.
    assert.equal(
      'idempotencyKey' in
        (decodeClientMessage(
          encodeInvoke({ callId: 3, kind: 'invoke', name: 'f', input: '', idempotencyKey: '' }),
        ) as object),
      false,
    );
    // PROTOCOL.md's example.
    const text = (value: string) => [...new TextEncoder().encode(value)];
    assert.deepEqual(
      encodeInvoke({ callId: 7, kind: 'invoke', name: 'incr', input: '{}' }),
      bytes(0x68, 0x07, 0x00, 0x04, ...text('incr'), 0x02, ...text('{}'), 0x00),
    );
    assert.deepEqual(
      encodeInvokeOk(7, '{"n":1}', '3f2a9c1d'),
      bytes(0x69, 0x07, 0x00, 0x07, ...text('{"n":1}'), 0x08, ...text('3f2a9c1d')),
    );
  });

  it('round-trips result: ok with its version, and errors with status, code and message', () => {
    assert.deepEqual(decodeInvokeResult(encodeInvokeOk(9, '{"n":1}', 'v1')), {
      type: 'result',
      callId: 9,
      ok: true,
      json: '{"n":1}',
      version: 'v1',
    });
    assert.deepEqual(decodeInvokeResult(encodeInvokeOk(2 ** 33, '', '')), {
      type: 'result',
      callId: 2 ** 33,
      ok: true,
      json: '',
      version: '',
    });
    assert.deepEqual(
      decodeInvokeResult(encodeInvokeError(10, 503, 'OVERLOADED', 'zu viele — 多すぎる')),
      {
        type: 'result',
        callId: 10,
        ok: false,
        status: 503,
        code: 'OVERLOADED',
        message: 'zu viele — 多すぎる',
      },
    );
    // Not a result: undefined, so the SDK hands it on.
    for (const frame of [
      encodeSaved(1),
      encodeError('X', 'y'),
      encodeUpdate(Y.encodeStateAsUpdate(sampleDoc())),
    ]) {
      assert.equal(decodeInvokeResult(frame), undefined);
    }
    // decodeServerExtension leaves results to decodeInvokeResult.
    assert.equal(decodeServerExtension(encodeInvokeOk(1, '1', 'v')), undefined);
  });

  it('decodeServerExtension ignores the standard messages', () => {
    const update = Y.encodeStateAsUpdate(sampleDoc());
    for (const frame of [
      encodeSyncStep1(bytes(0)),
      encodeSyncStep2(update),
      encodeUpdate(update),
      encodeAwareness(bytes(0)),
      encodeQueryAwareness(),
    ]) {
      assert.equal(decodeServerExtension(frame), undefined);
    }
  });

  it('decodes a frame that is a view into a larger buffer without reading past it', () => {
    // A frame that is a view into a larger buffer (as ws hands them out) must not
    // leak the neighbouring bytes into the decoded payload.
    const update = Y.encodeStateAsUpdate(sampleDoc());
    const inner = encodeUpdate(update);
    const big = new Uint8Array(inner.length + 20).fill(0xee);
    big.set(inner, 10);
    const decoded = decodeClientMessage(big.subarray(10, 10 + inner.length));
    assert.deepEqual(decoded, { type: 'update', update });
  });
});

describe('protocol errors', () => {
  const update = Y.encodeStateAsUpdate(sampleDoc());
  const valid: Array<[string, Uint8Array]> = [
    ['sync step 1', encodeSyncStep1(Y.encodeStateVector(sampleDoc()))],
    ['sync step 2', encodeSyncStep2(update)],
    ['update', encodeUpdate(update)],
    ['awareness', encodeAwareness(bytes(0))],
    ['hello', encodeHello()],
    ['token', encodeToken('abc')],
    [
      'invoke',
      encodeInvoke({
        callId: 300,
        kind: 'query',
        name: 'read',
        input: '{"counter":"a"}',
        idempotencyKey: 'key',
      }),
    ],
  ];

  it('refuses every strict prefix of a valid message as truncated', () => {
    for (const [name, frame] of valid) {
      for (let length = 0; length < frame.length; length++) {
        assert.throws(
          () => decodeClientMessage(frame.subarray(0, length)),
          ProtocolError,
          `${name} cut to ${length} bytes`,
        );
      }
    }
  });

  it('refuses a truncated frame even when the bytes after it are readable', () => {
    const frame = encodeUpdate(update);
    const big = new Uint8Array(frame.length + 64);
    big.set(frame);
    assert.throws(() => decodeClientMessage(big.subarray(0, frame.length - 1)), ProtocolError);
  });

  it('refuses trailing bytes after every message type', () => {
    for (const [name, frame] of [
      ...valid,
      ['query-awareness', encodeQueryAwareness()] as [string, Uint8Array],
    ]) {
      const longer = new Uint8Array(frame.length + 1);
      longer.set(frame);
      assert.throws(
        () => decodeClientMessage(longer),
        { name: 'ProtocolError', message: /trailing/ },
        name,
      );
    }
  });

  it('refuses unknown message types, including auth and the server-only extensions', () => {
    for (const type of [
      MessageType.Auth,
      4,
      99,
      MessageType.Saved,
      MessageType.Error,
      MessageType.Result,
      MessageType.Result + 1,
      2 ** 20,
    ]) {
      const frame = yProtocols((e) => encoding.writeVarUint(e, type));
      assert.throws(
        () => decodeClientMessage(frame),
        { name: 'ProtocolError', message: /unknown message type/ },
        `type ${type}`,
      );
    }
  });

  it('refuses an invoke with an unknown kind', () => {
    const frame = yProtocols((e) => {
      encoding.writeVarUint(e, MessageType.Invoke);
      encoding.writeVarUint(e, 1);
      encoding.writeVarUint(e, 2);
      encoding.writeVarString(e, 'f');
      encoding.writeVarString(e, '{}');
      encoding.writeVarString(e, '');
    });
    assert.throws(() => decodeClientMessage(frame), {
      name: 'ProtocolError',
      message: /unknown invoke kind 2/,
    });
  });

  it('decodeInvokeResult refuses truncated, trailing-byte and out-of-range results', () => {
    for (const frame of [
      encodeInvokeOk(300, '{"n":1}', 'v1'),
      encodeInvokeError(300, 404, 'NOT_FOUND', 'no such function'),
    ]) {
      for (let length = 1; length < frame.length; length++) {
        assert.throws(
          () => decodeInvokeResult(frame.subarray(0, length)),
          ProtocolError,
          `cut to ${length} bytes`,
        );
      }
      assert.throws(() => decodeInvokeResult(bytes(...frame, 0)), {
        name: 'ProtocolError',
        message: /trailing/,
      });
    }
    assert.throws(() => decodeInvokeResult(bytes()), ProtocolError);
    for (const status of [1, 200, 399, 600]) {
      assert.throws(
        () => decodeInvokeResult(encodeInvokeError(1, status, 'X', 'y')),
        { name: 'ProtocolError', message: /status/ },
        `status ${status}`,
      );
    }
  });

  it('refuses an unknown sync sub-type', () => {
    const frame = yProtocols((e) => {
      encoding.writeVarUint(e, MessageType.Sync);
      encoding.writeVarUint(e, SyncType.Update + 1);
      encoding.writeVarUint8Array(e, bytes(0, 0));
    });
    assert.throws(() => decodeClientMessage(frame), {
      name: 'ProtocolError',
      message: /unknown sync message type/,
    });
  });

  it('refuses an empty frame and an out-of-range integer', () => {
    assert.throws(() => decodeClientMessage(bytes()), ProtocolError);
    // Eleven continuation bytes: more than 2^53.
    assert.throws(
      () => decodeClientMessage(bytes(...new Array<number>(11).fill(0xff), 0x01)),
      ProtocolError,
    );
  });

  it('refuses malformed awareness updates whole', () => {
    const entry = (state: string): Uint8Array =>
      yProtocols((e) => {
        encoding.writeVarUint(e, 1);
        encoding.writeVarUint(e, 42);
        encoding.writeVarUint(e, 3);
        encoding.writeVarString(e, state);
      });
    assert.deepEqual(decodeAwarenessUpdate(entry('{"a":1}')), [
      { clientId: 42, clock: 3, state: { a: 1 } },
    ]);
    assert.throws(() => decodeAwarenessUpdate(entry('{not json')), ProtocolError, 'bad JSON');
    const good = entry('{"a":1}');
    assert.throws(
      () => decodeAwarenessUpdate(good.subarray(0, good.length - 2)),
      ProtocolError,
      'truncated',
    );
    assert.throws(() => decodeAwarenessUpdate(bytes(...good, 0)), ProtocolError, 'trailing bytes');
    assert.throws(
      () => decodeAwarenessUpdate(bytes(2, ...good.subarray(1))),
      ProtocolError,
      'count larger than the entries',
    );
    assert.throws(() => decodeAwarenessUpdate(bytes()), ProtocolError, 'empty');
  });

  it('decodeServerExtension refuses truncated and trailing-byte extension frames', () => {
    const saved = encodeSaved(300);
    assert.throws(() => decodeServerExtension(saved.subarray(0, saved.length - 1)), ProtocolError);
    assert.throws(() => decodeServerExtension(bytes(...saved, 0)), ProtocolError);
    const error = encodeError('INTERNAL', 'boom');
    assert.throws(() => decodeServerExtension(error.subarray(0, error.length - 1)), ProtocolError);
    assert.throws(() => decodeServerExtension(bytes(...error, 0)), ProtocolError);
    assert.throws(() => decodeServerExtension(bytes()), ProtocolError);
  });

  it('documents every message type in client-sdk/PROTOCOL.md', () => {
    const spec = readFileSync(
      fileURLToPath(new URL('../../../client-sdk/PROTOCOL.md', import.meta.url)),
      'utf8',
    );
    const documented = new Set(
      [...spec.matchAll(/^\| (\d+) \| [a-z-]+ \|/gm)].map((m) => Number(m[1])),
    );
    for (const [name, type] of Object.entries(MessageType)) {
      if (type === MessageType.Auth) continue; // reserved by y-protocols; PROTOCOL.md says it is refused
      assert.ok(documented.has(type), `${name} (${type}) has a row in PROTOCOL.md`);
    }
  });

  it('decodes y-protocols frames that a stock client writes', () => {
    const doc = sampleDoc();
    const step1 = yProtocols((e) => {
      encoding.writeVarUint(e, MessageType.Sync);
      syncProtocol.writeSyncStep1(e, doc);
    });
    const message = decodeClientMessage(step1);
    assert.equal(message.type, 'sync-step-1');
    // And a frame we encode is read back by y-protocols' own reader.
    const decoder = decoding.createDecoder(encodeUpdate(Y.encodeStateAsUpdate(doc)));
    assert.equal(decoding.readVarUint(decoder), MessageType.Sync);
    const target = new Y.Doc();
    syncProtocol.readSyncMessage(decoder, encoding.createEncoder(), target, null);
    assert.deepEqual(target.getText('text').toString(), 'hello');
  });
});

describe('the error table', () => {
  const codes = Object.keys(ERRORS) as ErrorCode[];
  // The only deliberate sharing, as documented in README and PROTOCOL.md.
  const SHARED: ReadonlyArray<readonly ErrorCode[]> = [
    ['INVALID_FRAME', 'INVALID_DOC_NAME', 'BAD_REQUEST'],
    ['FRAME_TOO_LARGE', 'BODY_TOO_LARGE'],
  ];

  it('gives every code a unique close code unless deliberately shared', () => {
    const byClose = new Map<number, ErrorCode[]>();
    for (const code of codes)
      byClose.set(ERRORS[code].close, [...(byClose.get(ERRORS[code].close) ?? []), code]);
    const shared = [...byClose.values()]
      .filter((group) => group.length > 1)
      .map((group) => [...group].sort());
    assert.deepEqual(shared.sort(), SHARED.map((group) => [...group].sort()).sort());
    assert.equal(ERRORS.INVALID_FRAME.close, 4400);
    assert.equal(ERRORS.FRAME_TOO_LARGE.close, 1009);
  });

  it('uses only application close codes 4000-4999 or the standard 1001, 1009, 1011', () => {
    for (const code of codes) {
      const { close } = ERRORS[code];
      assert.ok(
        (close >= 4000 && close <= 4999) || [1001, 1009, 1011].includes(close),
        `${code}: close ${close}`,
      );
    }
    assert.equal(ERRORS.SHUTTING_DOWN.close, 1001);
    assert.equal(ERRORS.INTERNAL.close, 1011);
  });

  it('maps every code to an HTTP error status', () => {
    for (const code of codes) {
      const { status } = ERRORS[code];
      assert.ok(
        Number.isInteger(status) && status >= 400 && status <= 599,
        `${code}: status ${status}`,
      );
    }
  });

  it('matches the table in README.md exactly', () => {
    const readme = readFileSync(
      fileURLToPath(new URL('../../../README.md', import.meta.url)),
      'utf8',
    );
    const rows = [...readme.matchAll(/^\| ([A-Z_]+) \| (\d{3}) \| (\d{4}) \|/gm)].map(
      (m) => [m[1]!, Number(m[2]), Number(m[3])] as const,
    );
    assert.deepEqual(
      rows.map(([code]) => code).sort(),
      [...codes].sort(),
      'README lists every code once',
    );
    for (const [code, status, close] of rows) {
      assert.deepEqual(
        { status, close },
        { status: ERRORS[code as ErrorCode].status, close: ERRORS[code as ErrorCode].close },
        code,
      );
    }
  });

  it('matches the close codes in client-sdk/PROTOCOL.md', () => {
    const spec = readFileSync(
      fileURLToPath(new URL('../../../client-sdk/PROTOCOL.md', import.meta.url)),
      'utf8',
    );
    const rows = [...spec.matchAll(/^\| (\d{4}) \| ([A-Z_]+) \|/gm)];
    assert.ok(rows.length >= 8, 'PROTOCOL.md has a close-code table');
    for (const [, close, code] of rows) {
      assert.ok(code! in ERRORS, `${code} is an error code`);
      assert.equal(ERRORS[code as ErrorCode].close, Number(close), code);
    }
  });

  it('keeps every close reason within 123 bytes of UTF-8', () => {
    for (const code of codes) {
      const reason = closeReason(new StateweaveError(code));
      assert.ok(Buffer.byteLength(reason) <= 123, `${code}: ${Buffer.byteLength(reason)} bytes`);
      assert.ok(reason.startsWith(`${code}: `), reason);
    }
    // Long messages, also with multi-byte characters cut at the boundary.
    for (const message of [
      'x'.repeat(500),
      'ä'.repeat(200),
      '😀'.repeat(100),
      `${'a'.repeat(98)}${'€'.repeat(30)}`,
    ]) {
      const reason = closeReason(new StateweaveError('INVALID_UPDATE', message));
      assert.ok(Buffer.byteLength(reason) <= 123, `${Buffer.byteLength(reason)} bytes`);
      assert.ok(!reason.includes('\uFFFD'), 'no broken character at the cut');
      assert.ok(reason.endsWith('...'));
      assert.ok(
        `INVALID_UPDATE: ${message}`.startsWith(reason.slice(0, -3)),
        'a prefix of the full reason',
      );
    }
    const short = closeReason(new StateweaveError('TEXT_FRAME', 'short'));
    assert.equal(short, 'TEXT_FRAME: short');
  });

  it('turns unknown throwables into INTERNAL without losing the cause', () => {
    const cause = new TypeError('boom');
    const err = toStateweaveError(cause);
    assert.equal(err.code, 'INTERNAL');
    assert.equal(err.status, 500);
    assert.equal(err.closeCode, 1011);
    assert.equal(err.cause, cause);
    const known = new StateweaveError('DOC_TOO_LARGE');
    assert.equal(toStateweaveError(known), known);
    assert.equal(known.message, ERRORS.DOC_TOO_LARGE.summary);
  });
});
