/**
 * Counts open connections per remote address so one address cannot take every
 * socket. `acquire` returns a release function, or undefined when at the limit.
 */
export interface IpConnections {
  acquire(ip: string): (() => void) | undefined;
  count(ip: string): number;
}

export const createIpConnections = (maxPerIp: number): IpConnections => {
  const counts = new Map<string, number>();
  return {
    acquire(ip) {
      const current = counts.get(ip) ?? 0;
      if (current >= maxPerIp) return undefined;
      counts.set(ip, current + 1);
      let released = false;
      return () => {
        if (released) return;
        released = true;
        const left = (counts.get(ip) ?? 1) - 1;
        if (left === 0) counts.delete(ip);
        else counts.set(ip, left);
      };
    },
    count: (ip) => counts.get(ip) ?? 0,
  };
};
