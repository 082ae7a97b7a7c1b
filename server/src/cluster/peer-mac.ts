/**
 * The one MAC every node-to-node signature uses: HMAC-SHA256 with the peer secret
 * (never the client token secret) over a scheme name and the signed parts, joined
 * by newlines, as base64url. The scheme name keeps the signatures of peer links,
 * forwarded calls and registry requests apart: one can never pass for another.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export const peerMac = (secret: string, scheme: string, parts: readonly string[]): string =>
  createHmac('sha256', secret)
    .update([scheme, ...parts].join('\n'))
    .digest('base64url');

/** Compares two MACs in constant time (for equal lengths; a length differs openly). */
export const sameMac = (a: string, b: string): boolean => {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
};

/** A signed `<unixMs>` timestamp within `maxSkewMs` of this node's clock. */
export const freshTimestamp = (ts: string, now: number, maxSkewMs: number): boolean =>
  /^\d+$/.test(ts) && Math.abs(now - Number(ts)) <= maxSkewMs;
