/**
 * A delaying TCP proxy on 127.0.0.1: what a long network path does to a TCP
 * connection, on one machine whose kernel has no `netem`. Every chunk, in each
 * direction, is handed on `delayMs` after it arrived, in order; data the client
 * sends right after connecting arrives no earlier than three one-way delays
 * after it connected (SYN, SYN-ACK, then the data), as over a real link. It can
 * cut every connection and refuse new ones until healed: a region cut off.
 *
 * Bandwidth, loss and jitter are not modelled; only latency is.
 */
import { createServer, Socket } from 'node:net';

export interface DelayProxyOptions {
  /** The port on 127.0.0.1 this proxy forwards to. */
  readonly targetPort: number;
  /** Added to every chunk, each direction (the round trip grows by twice this). */
  readonly delayMs: number;
  /**
   * Queued bytes per direction at which the sender is paused until the queue drains.
   * @default 4 MiB
   */
  readonly maxQueuedBytes?: number;
}

export interface DelayProxy {
  readonly port: number;
  readonly delayMs: number;
  /** Bytes relayed, both directions. */
  bytes(): number;
  /** Drops every connection and refuses new ones until `heal`. */
  cut(): void;
  heal(): void;
  isCut(): boolean;
  /** Cuts and stops listening. */
  close(): Promise<void>;
}

type Queued = { readonly due: number } & (
  | { readonly kind: 'data'; readonly chunk: Buffer }
  | { readonly kind: 'end' }
  | { readonly kind: 'destroy' }
);

/** One direction of one connection: a FIFO of timed chunks with one timer. */
const createLane = (
  from: Socket,
  to: Socket,
  delayMs: number,
  floorMs: number,
  maxQueuedBytes: number,
  count: (bytes: number) => void,
) => {
  const queue: Queued[] = [];
  let head = 0;
  let queuedBytes = 0;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  let ended = false;
  const flush = (): void => {
    timer = undefined;
    const now = performance.now();
    while (head < queue.length && queue[head]!.due <= now) {
      const item = queue[head++]!;
      if (item.kind === 'data') {
        queuedBytes -= item.chunk.byteLength;
        if (!to.destroyed) to.write(item.chunk);
      } else if (item.kind === 'end') to.end();
      else to.destroy();
    }
    if (head === queue.length) {
      queue.length = 0;
      head = 0;
    }
    if (queuedBytes < maxQueuedBytes && from.isPaused()) from.resume();
    schedule();
  };
  const schedule = (): void => {
    if (timer !== undefined || head >= queue.length) return;
    timer = setTimeout(flush, Math.max(0, queue[head]!.due - performance.now()));
  };
  // Due times only grow (a fixed delay, a floor that only applies early), so FIFO is time order.
  const push = (item: Queued): void => {
    if (stopped) return;
    queue.push(item);
    schedule();
  };
  const dueAt = (): number => Math.max(performance.now() + delayMs, floorMs);
  from.on('data', (chunk: Buffer) => {
    count(chunk.byteLength);
    queuedBytes += chunk.byteLength;
    push({ kind: 'data', chunk, due: dueAt() });
    if (queuedBytes >= maxQueuedBytes) from.pause();
  });
  from.on('end', () => {
    ended = true;
    push({ kind: 'end', due: dueAt() });
  });
  // Closed without an end (an error, a reset): the other side goes too, after the data sent before.
  from.on('close', () => {
    if (!ended) push({ kind: 'destroy', due: dueAt() });
  });
  // Expected on a reset or a cut; 'close' follows and does the rest.
  from.on('error', () => undefined);
  return {
    stop(): void {
      stopped = true;
      clearTimeout(timer);
      timer = undefined;
      queue.length = 0;
      head = 0;
    },
  };
};

export const startDelayProxy = async (options: DelayProxyOptions): Promise<DelayProxy> => {
  const maxQueuedBytes = options.maxQueuedBytes ?? 4 * 1024 * 1024;
  const { delayMs } = options;
  const sockets = new Set<Socket>();
  const lanes = new Set<{ stop(): void }>();
  let relayed = 0;
  let cut = false;
  const count = (bytes: number): void => {
    relayed += bytes;
  };
  const server = createServer({ allowHalfOpen: true }, (client) => {
    if (cut) return void client.destroy();
    const connectedAt = performance.now();
    const upstream = new Socket({ allowHalfOpen: true });
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    upstream.connect(options.targetPort, '127.0.0.1');
    sockets.add(client);
    sockets.add(upstream);
    const up = createLane(
      client,
      upstream,
      delayMs,
      connectedAt + 3 * delayMs,
      maxQueuedBytes,
      count,
    );
    const down = createLane(upstream, client, delayMs, 0, maxQueuedBytes, count);
    lanes.add(up);
    lanes.add(down);
    const forget = (): void => {
      if (!client.destroyed || !upstream.destroyed) return;
      sockets.delete(client);
      sockets.delete(upstream);
      lanes.delete(up);
      lanes.delete(down);
    };
    client.on('close', forget);
    upstream.on('close', forget);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const port = (server.address() as { port: number }).port;
  const cutAll = (): void => {
    cut = true;
    for (const lane of lanes) lane.stop();
    for (const socket of sockets) socket.destroy();
    lanes.clear();
    sockets.clear();
  };
  return {
    port,
    delayMs,
    bytes: () => relayed,
    cut: cutAll,
    heal() {
      cut = false;
    },
    isCut: () => cut,
    async close() {
      cutAll();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
};
