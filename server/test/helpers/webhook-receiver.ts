/**
 * A webhook receiver on 127.0.0.1 for tests: records every request (headers and
 * body), answers by a mode the test sets, and can go down and come back on the
 * same port. Stopped by the caller.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedRequest {
  readonly id: string;
  readonly timestamp: string;
  readonly signature: string;
  readonly body: string;
  /** Epoch seconds when it arrived (a receiver checks the timestamp against its clock). */
  readonly receivedAt: number;
  /** The status it was answered with; undefined while it hangs. */
  status?: number;
}

/**
 * `ok`: 204; `flaky`: every other request 503 (half fail); `fail`: 500; `hang`: record and
 * never answer (until the receiver goes down).
 */
export type ReceiverMode = 'ok' | 'flaky' | 'fail' | 'hang';

export interface WebhookReceiver {
  readonly url: string;
  readonly requests: ReceivedRequest[];
  /** Requests answered 2xx. */
  accepted(): ReceivedRequest[];
  mode: ReceiverMode;
  down(): Promise<void>;
  up(): Promise<void>;
  close(): Promise<void>;
}

const readBody = (req: IncomingMessage): Promise<string> =>
  new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });

export const startWebhookReceiver = async (): Promise<WebhookReceiver> => {
  const requests: ReceivedRequest[] = [];
  let server: Server | undefined;
  let port = 0;
  let flip = 0;
  const receiver: WebhookReceiver = {
    url: '',
    requests,
    accepted: () => requests.filter((r) => r.status !== undefined && r.status < 300),
    mode: 'ok',
    async down() {
      const s = server;
      server = undefined;
      if (!s) return;
      s.closeAllConnections();
      await new Promise<void>((resolve) => s.close(() => resolve()));
    },
    async up() {
      const s = createServer((req: IncomingMessage, res: ServerResponse) => {
        void readBody(req).then((body) => {
          const header = (name: string): string => String(req.headers[name] ?? '');
          const request: ReceivedRequest = {
            id: header('webhook-id'),
            timestamp: header('webhook-timestamp'),
            signature: header('webhook-signature'),
            body,
            receivedAt: Date.now() / 1000,
          };
          requests.push(request);
          if (receiver.mode === 'hang') return;
          const status =
            receiver.mode === 'fail'
              ? 500
              : receiver.mode === 'flaky' && flip++ % 2 === 0
                ? 503
                : 204;
          request.status = status;
          res.writeHead(status).end();
        });
      });
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.listen(port, '127.0.0.1', () => resolve());
      });
      port = (s.address() as AddressInfo).port;
      server = s;
      (receiver as { url: string }).url = `http://127.0.0.1:${port}/hook`;
    },
    close: () => receiver.down(),
  };
  await receiver.up();
  return receiver;
};
