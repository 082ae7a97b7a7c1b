/**
 * The address a connection is counted under. Behind a reverse proxy or a load
 * balancer every client arrives from the proxy's address, so per-address limits
 * would cap the whole node; `trustProxy` names the proxies whose forwarding
 * headers are believed. From any other peer the headers are ignored, since
 * anyone can send them.
 */
import type { IncomingMessage } from 'node:http';
import { BlockList, isIP } from 'node:net';

/** Resolves the client address of a request. */
export type ClientAddressOf = (req: IncomingMessage) => string;

/** `::ffff:10.0.0.1` and `10.0.0.1` are one address; a zone or brackets are not part of it. */
const normalize = (address: string): string => {
  const bare = address.replace(/^\[|\]$/g, '').replace(/%.*$/, '');
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(bare);
  return (mapped ? mapped[1]! : bare).toLowerCase();
};

/**
 * Parses `10.0.0.0/8`, `2001:db8::/32` or a single address into a BlockList;
 * throws (naming the entry) on anything else, so a typo never trusts nobody silently.
 */
export const parseTrustedProxies = (entries: readonly string[]): BlockList => {
  const list = new BlockList();
  for (const entry of entries) {
    const [address = '', prefix, extra] = entry.trim().split('/');
    const family = isIP(normalize(address));
    const bits = prefix === undefined ? undefined : /^\d+$/.test(prefix) ? Number(prefix) : NaN;
    const maxBits = family === 6 ? 128 : 32;
    if (family === 0 || extra !== undefined || (bits !== undefined && !(bits <= maxBits)))
      throw new Error(`trust-proxy: ${JSON.stringify(entry)} is not an address or CIDR range`);
    const type = family === 6 ? 'ipv6' : 'ipv4';
    if (bits === undefined) list.addAddress(normalize(address), type);
    else list.addSubnet(normalize(address), bits, type);
  }
  return list;
};

/** One hop of a `Forwarded` or `X-Forwarded-For` header as an address, or undefined if obfuscated or malformed. */
const hopAddress = (raw: string): string | undefined => {
  let value = raw.trim().replace(/^"|"$/g, '');
  if (value.startsWith('[')) value = value.slice(1, value.indexOf(']'));
  else if (/^\d+\.\d+\.\d+\.\d+:\d+$/.test(value)) value = value.slice(0, value.lastIndexOf(':'));
  const address = normalize(value);
  return isIP(address) === 0 ? undefined : address;
};

/** The `for=` hops of an RFC 7239 `Forwarded` header, nearest client first. */
const forwardedHops = (header: string): string[] =>
  header.split(',').map((element) => {
    const pair = element
      .split(';')
      .map((p) => p.trim())
      .find((p) => p.toLowerCase().startsWith('for='));
    return pair === undefined ? '' : pair.slice(4);
  });

const headerValue = (value: string | string[] | undefined): string | undefined =>
  Array.isArray(value) ? value.join(',') : value;

export const createClientAddressOf = (trustProxy: readonly string[]): ClientAddressOf => {
  const trusted = parseTrustedProxies(trustProxy);
  const isTrusted = (address: string): boolean =>
    trusted.check(address, isIP(address) === 6 ? 'ipv6' : 'ipv4');
  return (req) => {
    const peer = normalize(req.socket.remoteAddress ?? 'unknown');
    if (trustProxy.length === 0 || isIP(peer) === 0 || !isTrusted(peer)) return peer;
    const forwarded = headerValue(req.headers.forwarded);
    const xff = headerValue(req.headers['x-forwarded-for']);
    const hops =
      forwarded !== undefined ? forwardedHops(forwarded) : xff !== undefined ? xff.split(',') : [];
    // Walk from the nearest hop outwards: each trusted proxy vouches for the hop
    // before it; the first untrusted one is the client. Anything left of it was
    // written by the client and proves nothing.
    let client = peer;
    for (let i = hops.length - 1; i >= 0; i--) {
      const address = hopAddress(hops[i]!);
      if (address === undefined) break;
      client = address;
      if (!isTrusted(address)) break;
    }
    return client;
  };
};
