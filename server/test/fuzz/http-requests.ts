/** Hostile HTTP requests against a real node: request recipes and what the node must answer. */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { ERRORS } from '../../src/errors.js';
import { hex, mutate, mutationsArb, type Mutation } from '../helpers/fuzz.js';
import { type ChildNode } from '../helpers/node.js';
import { CASE_TIMEOUT_MS } from './in-process.js';
import { NET_MAX_FRAME_BYTES, type NetPools, netPools } from './ws-traffic.js';

// ================================================================ d. hostile HTTP requests

export interface RawResponse {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: Buffer;
}

export const parseResponse = (data: Buffer): RawResponse | undefined => {
  let rest = data;
  for (;;) {
    const end = rest.indexOf('\r\n\r\n');
    if (end === -1) return undefined;
    const [statusLine, ...lines] = rest.subarray(0, end).toString('latin1').split('\r\n');
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine ?? '')?.[1]);
    const headers: Record<string, string> = {};
    for (const line of lines) {
      const colon = line.indexOf(':');
      headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    rest = rest.subarray(end + 4);
    if (status >= 100 && status < 200) continue; // 100 Continue and friends
    let body = rest;
    if (headers['content-length'] !== undefined)
      body = rest.subarray(0, Number(headers['content-length']));
    else if (headers['transfer-encoding']?.includes('chunked')) {
      const chunks: Buffer[] = [];
      let at = 0;
      for (;;) {
        const lineEnd = rest.indexOf('\r\n', at);
        const size = parseInt(rest.subarray(at, lineEnd).toString(), 16);
        if (!(size > 0)) break;
        chunks.push(rest.subarray(lineEnd + 2, lineEnd + 2 + size));
        at = lineEnd + 2 + size + 2;
      }
      body = Buffer.concat(chunks);
    }
    return { status, headers, body };
  }
};

/** Writes raw bytes to the node and reads until it closes (or the time is up). */
export const rawHttp = (
  port: number,
  request: Buffer,
  { timeoutMs = CASE_TIMEOUT_MS, halfClose = false } = {},
): Promise<{ response?: RawResponse; timedOut: boolean; raw: Buffer }> =>
  new Promise((resolve) => {
    const socket: Socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let done = false;
    const finish = (timedOut: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      const raw = Buffer.concat(chunks);
      resolve({ response: parseResponse(raw), timedOut, raw });
    };
    const timer = setTimeout(() => finish(true), timeoutMs);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', () => finish(false));
    socket.on('close', () => finish(false));
    // Half-closing tells the node nothing more is coming (for requests cut short).
    if (halfClose) socket.end(request);
    else socket.write(request);
  });

export type BodyRecipe =
  | { readonly kind: 'empty' }
  | { readonly kind: 'random'; readonly bytes: Uint8Array }
  | { readonly kind: 'update'; readonly pick: number }
  | { readonly kind: 'mutated'; readonly pick: number; readonly mutations: readonly Mutation[] }
  | { readonly kind: 'gzip-update'; readonly pick: number }
  | { readonly kind: 'gzip-bomb' }
  | { readonly kind: 'oversize' }
  | { readonly kind: 'json' };

export interface HttpCase {
  readonly method: string;
  readonly target: string;
  readonly headers: ReadonlyArray<readonly [string, string]>;
  readonly body: BodyRecipe;
}

export const pathSegmentArb: fc.Arbitrary<string> = fc.oneof(
  {
    arbitrary: fc.string({
      unit: fc.constantFrom(...'abcXYZ019-._~:@=+'.split('')),
      minLength: 1,
      maxLength: 12,
    }),
    weight: 5,
  },
  {
    arbitrary: fc.constantFrom(
      '.',
      '..',
      '%2e%2e',
      '%2E',
      '%2f',
      '%2F',
      '%00',
      '%',
      '%zz',
      '%e0%a4%a',
      '%C3%A9',
      '%5C',
      '%20',
      '%ff',
      '%25',
      '%u0041',
      '..%2f..',
      '%252e',
      ';',
      ',',
      '!',
      '$',
      "'",
      '(',
      ')',
      '*',
      '[',
      ']',
      '~',
      '%0a',
      '%0d%0a',
    ),
    weight: 4,
  },
  { arbitrary: fc.integer({ min: 250, max: 6000 }).map((n) => 'x'.repeat(n)), weight: 1 },
  {
    arbitrary: fc.string({
      unit: fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c)),
      maxLength: 16,
    }),
    weight: 3,
  },
  {
    arbitrary: fc.string({ unit: 'grapheme', maxLength: 6 }).map((s) => encodeURIComponent(s)),
    weight: 2,
  },
);

export const httpCaseArb: fc.Arbitrary<HttpCase> = fc.record({
  method: fc.constantFrom(
    'GET',
    'GET',
    'POST',
    'POST',
    'POST',
    'PUT',
    'DELETE',
    'PATCH',
    'HEAD',
    'OPTIONS',
    'PROPFIND',
  ),
  target: fc.oneof(
    // Shaped like the API's routes, with hostile names.
    {
      arbitrary: fc
        .tuple(
          fc.array(pathSegmentArb, { minLength: 1, maxLength: 3 }),
          fc.constantFrom('', '/updates', '/updates', '/updates', '?x=1', '/updates?token=%zz'),
        )
        .map(([segments, suffix]) => `/v1/docs/${segments.join('/')}${suffix}`),
      weight: 3,
    },
    {
      arbitrary: fc
        .tuple(
          fc.constantFrom(
            '/v1/docs/',
            '/v1/docs',
            '/v1/',
            '/',
            '//',
            '/v1/docs//',
            '/healthz',
            '/metrics',
            '/readyz',
            '/V1/DOCS/',
            '/v1/docs/%2e%2e/',
            '/..',
          ),
          fc.array(pathSegmentArb, { maxLength: 4 }),
          fc.constantFrom('', '/updates', '/updates/', '/updates/x', '/', '?x=1', '#frag'),
        )
        .map(([prefix, segments, suffix]) => `${prefix}${segments.join('/')}${suffix}`),
      weight: 2,
    },
  ),
  headers: fc.array(
    fc.oneof(
      fc.tuple(
        fc.constant('Content-Type'),
        fc.constantFrom(
          'application/octet-stream',
          'application/json',
          'text/plain',
          'text/plain; charset=utf-16',
          'multipart/form-data; boundary=x',
          'application/x-www-form-urlencoded',
          '*/*',
          'application/octet-stream; charset=bogus',
        ),
      ),
      fc.tuple(
        fc.constant('Accept'),
        fc.constantFrom(
          'application/json',
          'application/octet-stream',
          '*/*',
          'text/html',
          'application/octet-stream;q=0.1, application/json;q=0.9',
          'garbage;;;q=x',
        ),
      ),
      fc.tuple(
        fc.constant('Content-Encoding'),
        fc.constantFrom('identity', 'bogus', 'deflate', 'br', 'gzip, gzip'),
      ),
      fc.tuple(
        fc.constant('Authorization'),
        fc.constantFrom(
          'Bearer x',
          'Bearer',
          'Basic Og==',
          `Bearer ${'a'.repeat(4000)}`,
          'Bearer a.b.c',
        ),
      ),
      fc.tuple(
        fc.constantFrom('X-Junk', 'Cookie', 'Range', 'If-None-Match'),
        fc.string({
          unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)),
          maxLength: 64,
        }),
      ),
    ),
    { maxLength: 3 },
  ),
  body: fc.oneof(
    { arbitrary: fc.constant<BodyRecipe>({ kind: 'empty' }), weight: 3 },
    {
      arbitrary: fc.record({
        kind: fc.constant('random' as const),
        bytes: fc.uint8Array({ maxLength: 2048 }),
      }),
      weight: 2,
    },
    { arbitrary: fc.record({ kind: fc.constant('update' as const), pick: fc.nat() }), weight: 3 },
    {
      arbitrary: fc.record({
        kind: fc.constant('mutated' as const),
        pick: fc.nat(),
        mutations: mutationsArb(3),
      }),
      weight: 4,
    },
    {
      arbitrary: fc.record({ kind: fc.constant('gzip-update' as const), pick: fc.nat() }),
      weight: 1,
    },
    { arbitrary: fc.constant<BodyRecipe>({ kind: 'gzip-bomb' }), weight: 1 },
    { arbitrary: fc.constant<BodyRecipe>({ kind: 'oversize' }), weight: 1 },
    { arbitrary: fc.constant<BodyRecipe>({ kind: 'json' }), weight: 1 },
  ),
});

export let gzipBomb: Buffer | undefined;

export const httpRequestBytes = (c: HttpCase, pools: NetPools): Buffer => {
  const pickUpdate = (pick: number) => pools.updates[pick % pools.updates.length]!;
  const headers = c.headers
    .filter(([name]) => name !== 'Content-Encoding' || !c.body.kind.startsWith('gzip'))
    .map(([n, v]) => [n, v] as const);
  let body: Uint8Array;
  switch (c.body.kind) {
    case 'empty':
      body = new Uint8Array(0);
      break;
    case 'random':
      body = c.body.bytes;
      break;
    case 'update':
      body = pickUpdate(c.body.pick);
      break;
    case 'mutated':
      body = mutate(pickUpdate(c.body.pick), c.body.mutations);
      break;
    case 'gzip-update':
      body = gzipSync(pickUpdate(c.body.pick));
      headers.push(['Content-Encoding', 'gzip']);
      break;
    case 'gzip-bomb':
      // 32 MiB of zeros in ~32 KiB: must be refused by the body limit, not inflated.
      body = gzipBomb ??= gzipSync(Buffer.alloc(32 * 1024 * 1024), { level: 9 });
      headers.push(['Content-Encoding', 'gzip']);
      break;
    case 'oversize':
      body = new Uint8Array(NET_MAX_FRAME_BYTES + 1).fill(1);
      break;
    case 'json':
      body = Buffer.from(JSON.stringify({ update: [1, 2, 3] }));
      break;
  }
  const head =
    `${c.method} ${c.target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n` +
    headers.map(([name, value]) => `${name}: ${value}\r\n`).join('') +
    `Content-Length: ${body.byteLength}\r\n\r\n`;
  return Buffer.concat([Buffer.from(head, 'latin1'), body]);
};

export const describeHttp = (c: HttpCase, request: Buffer): string => {
  const text = request.toString('latin1');
  const headEnd = text.indexOf('\r\n\r\n');
  const head = text.slice(0, headEnd).replace(/a{100,}|x{100,}/g, (m) => `${m[0]}×${m.length}`);
  return `${JSON.stringify(head)} + ${request.length - headEnd - 4}-byte body (${c.body.kind}${'bytes' in c.body ? ` ${hex(c.body.bytes).slice(0, 200)}` : ''}${c.body.kind === 'mutated' ? ` ${hex(request.subarray(headEnd + 4))}` : ''})`;
};

export interface HttpRun {
  readonly requests: number;
  readonly statuses: Record<string, number>;
  /** Answers that are not a JSON error from the table (or a 2xx). */
  readonly malformed: string[];
  readonly serverErrors: string[];
  readonly ms: number;
  readonly maxMs: number;
}

/** Checks one answer of the API: a 2xx, or a JSON error whose code carries that status. */
export const checkAnswer = (method: string, response: RawResponse): string | undefined => {
  const { status } = response;
  if (status >= 200 && status < 300) return undefined;
  if (status < 400 || status >= 600) return `status ${status}`;
  if (method === 'HEAD') return undefined; // no body by definition
  if (!response.headers['content-type']?.startsWith('application/json'))
    return `status ${status} with content-type ${response.headers['content-type']}`;
  let body: { error?: { code?: unknown; message?: unknown } };
  try {
    body = JSON.parse(response.body.toString()) as typeof body;
  } catch {
    return `status ${status} with a body that is not JSON: ${response.body.toString().slice(0, 200)}`;
  }
  const code = body.error?.code;
  if (typeof code !== 'string' || !(code in ERRORS))
    return `status ${status} with unknown code ${String(code)}`;
  if (ERRORS[code as keyof typeof ERRORS].status !== status)
    return `status ${status} with code ${code}`;
  if (typeof body.error?.message !== 'string') return `status ${status} without a message`;
  return undefined;
};

export const healthy = async (node: ChildNode): Promise<void> => {
  assert.equal(
    node.child.exitCode,
    null,
    `the node exited:\n${node
      .output()
      .split('\n')
      .filter((l) => l.includes('"level":60'))
      .join('\n')}`,
  );
  const res = await fetch(`${node.url}/healthz`, { signal: AbortSignal.timeout(CASE_TIMEOUT_MS) });
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { status: 'ok' });
};

export const httpTraffic = async (
  node: ChildNode,
  seed: number,
  count: number,
  fixed: HttpCase[],
): Promise<HttpRun> => {
  const started = Date.now();
  const pools = netPools(seed);
  const cases = [...fixed, ...fc.sample(httpCaseArb, { seed, numRuns: count })];
  const statuses: Record<string, number> = {};
  const malformed: string[] = [];
  const serverErrors: string[] = [];
  let maxMs = 0;
  for (const [i, c] of cases.entries()) {
    const request = httpRequestBytes(c, pools);
    const t0 = Date.now();
    const { response, timedOut, raw } = await rawHttp(node.port, request);
    maxMs = Math.max(maxMs, Date.now() - t0);
    if (timedOut)
      throw new Error(
        `request #${i} (seed ${seed}) got no answer within ${CASE_TIMEOUT_MS} ms: ${describeHttp(c, request)}`,
      );
    if (!response) {
      malformed.push(`no HTTP answer (${raw.length} bytes) to ${describeHttp(c, request)}`);
      continue;
    }
    statuses[response.status] = (statuses[response.status] ?? 0) + 1;
    const problem = checkAnswer(c.method, response);
    if (problem) malformed.push(`${problem} for ${describeHttp(c, request)}`);
    if (response.status >= 500)
      serverErrors.push(
        `${response.status} ${response.body.toString().slice(0, 200)} for ${describeHttp(c, request)}`,
      );
    if (i % 25 === 24) await healthy(node);
  }
  return {
    requests: cases.length,
    statuses,
    malformed,
    serverErrors,
    ms: Date.now() - started,
    maxMs,
  };
};

/** Requests that break HTTP itself: Node's parser answers them, not the API. */
export const PROTOCOL_JUNK: ReadonlyArray<readonly [string, Buffer]> = [
  ['garbage request line', Buffer.from('GARBAGE\r\n\r\n')],
  ['space in the path', Buffer.from('GET /v1/docs/a b HTTP/1.1\r\nHost: x\r\n\r\n')],
  ['control character in the path', Buffer.from('GET /v1/docs/\x01 HTTP/1.1\r\nHost: x\r\n\r\n')],
  [
    'raw non-ASCII bytes in the path',
    Buffer.concat([
      Buffer.from('GET /v1/docs/'),
      Buffer.from([0xff, 0xfe, 0xc3]),
      Buffer.from(' HTTP/1.1\r\nHost: x\r\n\r\n'),
    ]),
  ],
  ['unknown method', Buffer.from('FOO /v1/docs/a HTTP/1.1\r\nHost: x\r\n\r\n')],
  ['header without a colon', Buffer.from('GET /v1/docs/a HTTP/1.1\r\nHost: x\r\nno-colon\r\n\r\n')],
  [
    'space in a header name',
    Buffer.from('GET /v1/docs/a HTTP/1.1\r\nHost: x\r\nBad Name: y\r\n\r\n'),
  ],
  [
    'negative Content-Length',
    Buffer.from('POST /v1/docs/a/updates HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n'),
  ],
  [
    'non-numeric Content-Length',
    Buffer.from('POST /v1/docs/a/updates HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n'),
  ],
  [
    'two different Content-Lengths',
    Buffer.from(
      'POST /v1/docs/a/updates HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab',
    ),
  ],
  [
    'Content-Length and chunked',
    Buffer.from(
      'POST /v1/docs/a/updates HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    ),
  ],
  [
    'bad chunk size',
    Buffer.from(
      'POST /v1/docs/a/updates HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n',
    ),
  ],
  [
    'huge chunk size',
    Buffer.from(
      'POST /v1/docs/a/updates HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\nab\r\n',
    ),
  ],
  [
    'oversized header',
    Buffer.from(`GET /v1/docs/a HTTP/1.1\r\nHost: x\r\nX-Big: ${'b'.repeat(20_000)}\r\n\r\n`),
  ],
  [
    'oversized request line',
    Buffer.from(`GET /v1/docs/${'c'.repeat(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`),
  ],
  ['HTTP/9.9', Buffer.from('GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n')],
  ['CONNECT', Buffer.from('CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n')],
  [
    'absolute-form target',
    Buffer.from(
      'GET http://evil.example/v1/docs/a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
    ),
  ],
  [
    'asterisk-form target',
    Buffer.from('OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'),
  ],
  ['truncated head', Buffer.from('GET /v1/docs/a HTTP/1.1\r\nHost: x\r\n')],
  [
    'pipelined valid and invalid',
    Buffer.from(
      'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /v1/docs/%zz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
    ),
  ],
  [
    'websocket upgrade to a bad name',
    Buffer.from(
      'GET /a/../b HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
    ),
  ],
  [
    'websocket upgrade with a bad key',
    Buffer.from(
      'GET /doc HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: short\r\n\r\n',
    ),
  ],
  [
    'websocket upgrade with a bad version',
    Buffer.from(
      'GET /doc HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 99\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
    ),
  ],
];
