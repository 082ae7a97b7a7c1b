import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createHttpServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as jose from 'jose';
import { createAccessPolicy, requireRight } from '../src/auth/access.js';
import { matchesDoc, type Grant } from '../src/auth/grant.js';
import { createTokenVerifier, mintToken } from '../src/auth/tokens.js';
import { StateweaveError } from '../src/errors.js';
import { createIpConnections } from '../src/limits/ip-connections.js';
import { createTokenBucket } from '../src/limits/token-bucket.js';

const SECRET = 'a-test-secret-that-is-long-enough-for-hs256';
const key = new TextEncoder().encode(SECRET);

const rejectsWith = async (promise: Promise<unknown>, code: string) =>
  assert.rejects(promise, (err: unknown) => err instanceof StateweaveError && err.code === code);

const b64 = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');

describe('document patterns', () => {
  it('matches exact names, prefixes with /*, and * for all', () => {
    assert.equal(matchesDoc('notes', 'notes'), true);
    assert.equal(matchesDoc('notes', 'notes2'), false);
    assert.equal(matchesDoc('team-42/*', 'team-42/a'), true);
    assert.equal(matchesDoc('team-42/*', 'team-42/a/b'), true);
    assert.equal(matchesDoc('team-42/*', 'team-42'), false);
    assert.equal(matchesDoc('team-42/*', 'team-421/a'), false);
    assert.equal(matchesDoc('*', 'anything/at/all'), true);
  });
});

describe('HS256 tokens', () => {
  it('verifies a minted token into a grant', async () => {
    const verifier = await createTokenVerifier({ secret: SECRET });
    const token = await mintToken({
      secret: SECRET,
      docs: ['team-42/*'],
      rights: ['read', 'write'],
      subject: 'ada',
    });
    const grant = await verifier.verify(token);
    assert.equal(grant.subject, 'ada');
    assert.deepEqual(grant.docs, ['team-42/*']);
    assert.deepEqual([...grant.rights].sort(), ['read', 'write']);
    assert.ok(grant.expiresAt! > Date.now());
  });

  it('refuses a tampered token', async () => {
    const verifier = await createTokenVerifier({ secret: SECRET });
    const token = await mintToken({ secret: SECRET, docs: ['a'], rights: ['read'] });
    const [header, , signature] = token.split('.');
    const forged = `${header}.${b64({ docs: ['*'], rights: ['admin'], exp: 9999999999 })}.${signature}`;
    await rejectsWith(verifier.verify(forged), 'UNAUTHORIZED');
  });

  it('refuses a token signed with another secret', async () => {
    const verifier = await createTokenVerifier({ secret: SECRET });
    const token = await mintToken({
      secret: 'another-secret-that-is-also-long-enough!!',
      docs: ['a'],
      rights: ['read'],
    });
    await rejectsWith(verifier.verify(token), 'UNAUTHORIZED');
  });

  it('refuses an expired token with TOKEN_EXPIRED', async () => {
    const verifier = await createTokenVerifier({ secret: SECRET });
    const token = await new jose.SignJWT({ docs: ['a'], rights: ['read'] })
      .setProtectedHeader({ alg: 'HS256' })
      .setExpirationTime(Math.floor(Date.now() / 1000) - 60)
      .sign(key);
    await rejectsWith(verifier.verify(token), 'TOKEN_EXPIRED');
  });

  it('refuses alg: none', async () => {
    const verifier = await createTokenVerifier({ secret: SECRET });
    const unsecured = new jose.UnsecuredJWT({ docs: ['*'], rights: ['admin'] })
      .setExpirationTime('1h')
      .encode();
    await rejectsWith(verifier.verify(unsecured), 'UNAUTHORIZED');
    const handmade = `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ docs: ['*'], rights: ['admin'], exp: 9999999999 })}.`;
    await rejectsWith(verifier.verify(handmade), 'UNAUTHORIZED');
  });

  it('refuses a token without exp, without docs, or with unknown rights', async () => {
    const verifier = await createTokenVerifier({ secret: SECRET });
    const sign = (claims: jose.JWTPayload, exp = true) => {
      const jwt = new jose.SignJWT(claims).setProtectedHeader({ alg: 'HS256' });
      if (exp) jwt.setExpirationTime('1h');
      return jwt.sign(key);
    };
    await rejectsWith(
      verifier.verify(await sign({ docs: ['a'], rights: ['read'] }, false)),
      'UNAUTHORIZED',
    );
    await rejectsWith(verifier.verify(await sign({ rights: ['read'] })), 'UNAUTHORIZED');
    await rejectsWith(
      verifier.verify(await sign({ docs: ['a'], rights: ['root'] })),
      'UNAUTHORIZED',
    );
    await rejectsWith(verifier.verify('not.a.jwt'), 'UNAUTHORIZED');
  });

  it('refuses a secret shorter than 32 bytes at start', async () => {
    await assert.rejects(createTokenVerifier({ secret: 'short' }), /at least 32 bytes/);
  });
});

describe('asymmetric tokens', () => {
  let jwks: Server;
  let jwksUrl: string;
  let privateKey: Awaited<ReturnType<typeof jose.generateKeyPair>>['privateKey'];
  let publicPem: string;

  before(async () => {
    const pair = await jose.generateKeyPair('ES256', { extractable: true });
    privateKey = pair.privateKey;
    publicPem = await jose.exportSPKI(pair.publicKey);
    const jwk = { ...(await jose.exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
    jwks = createHttpServer((_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((resolve) => jwks.listen(0, '127.0.0.1', resolve));
    jwksUrl = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/jwks.json`;
  });
  after(() => new Promise<void>((resolve) => jwks.close(() => resolve())));

  const es256 = () =>
    new jose.SignJWT({ docs: ['a/*'], rights: ['read'] })
      .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
      .setExpirationTime('1h')
      .sign(privateKey);

  it('verifies with a PEM public key', async () => {
    const verifier = await createTokenVerifier({ publicKey: publicPem });
    assert.deepEqual((await verifier.verify(await es256())).docs, ['a/*']);
  });

  it('verifies with a JWKS URL', async () => {
    const verifier = await createTokenVerifier({ jwksUrl });
    assert.deepEqual((await verifier.verify(await es256())).docs, ['a/*']);
  });

  it('refuses an HS256 token signed with the public key text (algorithm confusion)', async () => {
    const verifier = await createTokenVerifier({ publicKey: publicPem });
    const confused = await new jose.SignJWT({ docs: ['*'], rights: ['admin'] })
      .setProtectedHeader({ alg: 'HS256' })
      .setExpirationTime('1h')
      .sign(new TextEncoder().encode(publicPem));
    await rejectsWith(verifier.verify(confused), 'UNAUTHORIZED');
  });
});

describe('access policy', () => {
  it('is open in development mode (no keys)', async () => {
    const policy = await createAccessPolicy({});
    assert.equal(policy.mode, 'development');
    const grant = await policy.authenticate(undefined);
    requireRight(grant, 'admin', 'any/doc');
  });

  it('requires a token when keys are configured', async () => {
    const policy = await createAccessPolicy({ secret: SECRET });
    await rejectsWith(policy.authenticate(undefined), 'UNAUTHORIZED');
  });

  it('gives anonymous callers only the configured rights, and never downgrades a bad token', async () => {
    const policy = await createAccessPolicy({ secret: SECRET, anonymous: ['read'] });
    const grant = await policy.authenticate(undefined);
    requireRight(grant, 'read', 'x');
    assert.throws(
      () => requireRight(grant, 'write', 'x'),
      (err: StateweaveError) => err.code === 'FORBIDDEN',
    );
    await rejectsWith(policy.authenticate('garbage'), 'UNAUTHORIZED');
  });

  it('checks each right and the document pattern', () => {
    const grant: Grant = { subject: 's', docs: ['team-42/*'], rights: new Set(['read']) };
    requireRight(grant, 'read', 'team-42/notes');
    for (const right of ['write', 'invoke', 'admin'] as const) {
      assert.throws(
        () => requireRight(grant, right, 'team-42/notes'),
        (err: StateweaveError) => err.code === 'FORBIDDEN',
      );
    }
    assert.throws(
      () => requireRight(grant, 'read', 'team-43/notes'),
      (err: StateweaveError) => err.code === 'FORBIDDEN',
    );
    const expired: Grant = { ...grant, expiresAt: Date.now() - 1 };
    assert.throws(
      () => requireRight(expired, 'read', 'team-42/notes'),
      (err: StateweaveError) => err.code === 'TOKEN_EXPIRED',
    );
  });
});

describe('limits', () => {
  it('token bucket allows a burst, then the refill rate', () => {
    const bucket = createTokenBucket(10, 5);
    let t = performance.now();
    let allowed = 0;
    for (let i = 0; i < 20; i++) if (bucket.take(1, t)) allowed++;
    assert.equal(allowed, 5);
    t += 1000; // one second refills 10, capped at the burst of 5
    allowed = 0;
    for (let i = 0; i < 20; i++) if (bucket.take(1, t)) allowed++;
    assert.equal(allowed, 5);
    t += 100; // 100 ms refills one
    assert.equal(bucket.take(1, t), true);
    assert.equal(bucket.take(1, t), false);
  });

  it('per-IP connections stop at the limit and free on release', () => {
    const ips = createIpConnections(2);
    assert.equal(ips.acquire('1.2.3.4'), true);
    assert.equal(ips.acquire('1.2.3.4'), true);
    assert.equal(ips.acquire('1.2.3.4'), false);
    assert.equal(ips.acquire('5.6.7.8'), true);
    ips.release('1.2.3.4');
    assert.equal(ips.count('1.2.3.4'), 1);
    assert.equal(ips.acquire('1.2.3.4'), true);
    ips.release('1.2.3.4');
    ips.release('1.2.3.4');
    assert.equal(ips.count('1.2.3.4'), 0);
    ips.release('1.2.3.4'); // more releases than acquires never go negative
    assert.equal(ips.count('1.2.3.4'), 0);
  });
});

describe('stateweave token', () => {
  it('mints a token the node accepts, from STATEWEAVE_AUTH_SECRET', async () => {
    const { spawnSync } = await import('node:child_process');
    const { MAIN } = await import('./helpers/node.js');
    const run = spawnSync(
      process.execPath,
      [
        MAIN,
        'token',
        '--docs',
        'team-42/*,lobby',
        '--rights',
        'read,write',
        '--ttl',
        '90',
        '--sub',
        'ada',
      ],
      {
        encoding: 'utf8',
        env: { ...process.env, STATEWEAVE_AUTH_SECRET: SECRET },
        timeout: 10_000,
      },
    );
    assert.equal(run.status, 0, run.stderr);
    const grant = await (await createTokenVerifier({ secret: SECRET })).verify(run.stdout.trim());
    assert.equal(grant.subject, 'ada');
    assert.deepEqual(grant.docs, ['team-42/*', 'lobby']);
    assert.ok(grant.expiresAt! - Date.now() <= 90_000 && grant.expiresAt! - Date.now() > 80_000);
  });

  it('exits 2 with usage for an unknown right or a missing secret', async () => {
    const { spawnSync } = await import('node:child_process');
    const { MAIN } = await import('./helpers/node.js');
    const env = { ...process.env };
    delete env.STATEWEAVE_AUTH_SECRET;
    const bad = spawnSync(
      process.execPath,
      [MAIN, 'token', '--docs', 'a', '--rights', 'root', '--secret', SECRET],
      { encoding: 'utf8', env },
    );
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /unknown right "root"/);
    const noSecret = spawnSync(
      process.execPath,
      [MAIN, 'token', '--docs', 'a', '--rights', 'read'],
      { encoding: 'utf8', env },
    );
    assert.equal(noSecret.status, 2);
    assert.match(noSecret.stderr, /STATEWEAVE_AUTH_SECRET/);
  });
});

describe('verified-token cache', () => {
  const secret = 'token-cache-test-secret-that-is-long-enough-0123456';
  const counting = async () => {
    const inner = await createTokenVerifier({ secret });
    let checks = 0;
    return {
      verifier: {
        verify: (token: string) => {
          checks++;
          return inner.verify(token);
        },
      },
      checks: () => checks,
    };
  };

  it('checks a token once, then answers from the cache until it expires', async () => {
    const { cacheVerifiedTokens } = await import('../src/auth/token-cache.js');
    const { verifier, checks } = await counting();
    const cached = cacheVerifiedTokens(verifier);
    const token = await mintToken({ secret, docs: ['a'], rights: ['read'], ttl: 1 });
    const first = await cached.verify(token);
    assert.deepEqual(await cached.verify(token), first);
    assert.equal(checks(), 1);
    await new Promise((resolve) => setTimeout(resolve, first.expiresAt! - Date.now() + 50));
    // Past exp: the cache must not vouch for it.
    await assert.rejects(
      cached.verify(token),
      (err: StateweaveError) => err.code === 'TOKEN_EXPIRED',
    );
    assert.equal(checks(), 2);
  });

  it('does not cache failures, re-checks after ttlMs, and stays within max entries', async () => {
    const { cacheVerifiedTokens } = await import('../src/auth/token-cache.js');
    const { verifier, checks } = await counting();
    let clock = Date.now();
    const cached = cacheVerifiedTokens(verifier, { max: 2, ttlMs: 1000, now: () => clock });
    await assert.rejects(cached.verify('not-a-token'));
    await assert.rejects(cached.verify('not-a-token'));
    assert.equal(checks(), 2, 'a failure is checked every time');
    const tokens = await Promise.all(
      ['a', 'b', 'c'].map((d) => mintToken({ secret, docs: [d], rights: ['read'], ttl: 600 })),
    );
    for (const t of tokens) await cached.verify(t);
    assert.equal(checks(), 5);
    await cached.verify(tokens[2]!);
    assert.equal(checks(), 5, 'the newest is cached');
    await cached.verify(tokens[0]!);
    assert.equal(checks(), 6, 'the oldest was dropped (max 2)');
    clock += 1001;
    await cached.verify(tokens[0]!);
    assert.equal(checks(), 7, 'past ttlMs it is checked again');
  });
});
