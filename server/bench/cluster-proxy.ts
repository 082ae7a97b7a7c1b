/**
 * A TCP proxy for `npm run bench:cluster` that counts the bytes it carries and
 * can cut every connection (a partition) and let them back (heal). Without
 * Nagle's algorithm, like the nodes' own sockets (ws and ioredis set
 * TCP_NODELAY): it must not hold small writes back where a direct link would not.
 */
import { createServer, Socket, type AddressInfo, type Server } from 'node:net';

export interface Proxy {
  /** `127.0.0.1:<port>`: where to connect instead of the target. */
  readonly address: string;
  /** Bytes carried both ways since the last `resetBytes`. */
  bytes(): number;
  resetBytes(): void;
  /** Ends every connection and refuses new ones until `heal`. */
  cut(): void;
  heal(): void;
  close(): Promise<void>;
}

export const listenLocal = (server: Server): Promise<number> =>
  new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)),
  );

export async function freePort(): Promise<number> {
  const server = createServer();
  const port = await listenLocal(server);
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export async function proxyTo(targetPort: number): Promise<Proxy> {
  const sockets = new Set<Socket>();
  let cut = false;
  let bytes = 0;
  const endAll = (): void => sockets.forEach((s) => s.destroy());
  const server = createServer({ noDelay: true }, (client) => {
    if (cut) return void client.destroy();
    const upstream = new Socket().connect(targetPort, '127.0.0.1');
    upstream.setNoDelay(true);
    const pipe = (from: Socket, to: Socket): void => {
      sockets.add(from);
      from.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        to.write(chunk);
      });
      from.on('error', () => to.destroy());
      from.on('close', () => {
        sockets.delete(from);
        to.destroy();
      });
    };
    pipe(client, upstream);
    pipe(upstream, client);
  });
  const port = await listenLocal(server);
  return {
    address: `127.0.0.1:${port}`,
    bytes: () => bytes,
    resetBytes: () => void (bytes = 0),
    cut() {
      cut = true;
      endAll();
    },
    heal: () => void (cut = false),
    async close() {
      cut = true;
      endAll();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
