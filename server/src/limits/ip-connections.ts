/**
 * Counts open connections per remote address so one address cannot take every
 * socket. `acquire` counts one more connection (false when at the limit);
 * `release` frees one, and must be called exactly once per successful
 * `acquire` (the caller keeps the address, not a release function: idle memory
 * is per connection).
 */
export interface IpConnections {
  acquire(ip: string): boolean;
  release(ip: string): void;
  count(ip: string): number;
}

export const createIpConnections = (maxPerIp: number): IpConnections => {
  const counts = new Map<string, number>();
  return {
    acquire(ip) {
      const current = counts.get(ip) ?? 0;
      if (current >= maxPerIp) return false;
      counts.set(ip, current + 1);
      return true;
    },
    release(ip) {
      const left = (counts.get(ip) ?? 0) - 1;
      if (left <= 0) counts.delete(ip);
      else counts.set(ip, left);
    },
    count: (ip) => counts.get(ip) ?? 0,
  };
};
