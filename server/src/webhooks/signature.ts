/**
 * Standard Webhooks signatures (https://www.standardwebhooks.com): a message
 * carries `webhook-id`, `webhook-timestamp` (Unix seconds) and
 * `webhook-signature: v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`.
 * A receiver recomputes the HMAC and refuses a timestamp far from its clock, so
 * a captured request cannot be replayed later. Pure: no I/O.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

/** Shortest secret accepted, in bytes (as the token secret). */
export const MIN_WEBHOOK_SECRET_BYTES = 16;

/**
 * The key bytes of a secret: `whsec_<base64>` (the Standard Webhooks form, as the
 * reference libraries take it) is the decoded base64; anything else is its UTF-8.
 */
export const webhookKey = (secret: string): Buffer =>
  secret.startsWith('whsec_') ? Buffer.from(secret.slice(6), 'base64') : Buffer.from(secret);

export interface SignedHeaders {
  readonly 'webhook-id': string;
  readonly 'webhook-timestamp': string;
  readonly 'webhook-signature': string;
}

const hmac = (key: Buffer, id: string, timestamp: string, body: string): Buffer =>
  createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest();

export const signWebhook = (
  key: Buffer,
  id: string,
  timestampSeconds: number,
  body: string,
): SignedHeaders => {
  const timestamp = String(Math.floor(timestampSeconds));
  return {
    'webhook-id': id,
    'webhook-timestamp': timestamp,
    'webhook-signature': `v1,${hmac(key, id, timestamp, body).toString('base64')}`,
  };
};

/**
 * What a receiver does (exported for tests and for receivers written in
 * TypeScript): true when one of the space-separated `v1,` signatures matches
 * and the timestamp is within `toleranceSeconds` of `nowSeconds`.
 */
export const verifyWebhook = (
  key: Buffer,
  headers: { id: string; timestamp: string; signature: string },
  body: string,
  nowSeconds: number,
  toleranceSeconds = 300,
): boolean => {
  const ts = Number(headers.timestamp);
  if (!/^\d{1,12}$/.test(headers.timestamp) || Math.abs(nowSeconds - ts) > toleranceSeconds)
    return false;
  const expected = hmac(key, headers.id, headers.timestamp, body);
  return headers.signature.split(' ').some((part) => {
    if (!part.startsWith('v1,')) return false;
    const given = Buffer.from(part.slice(3), 'base64');
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
};
