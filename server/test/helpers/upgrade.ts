/** Opening WebSockets that may be refused before the handshake, with a time limit. */
import { WebSocket } from 'ws';

export type Upgrade =
  | { readonly open: true; readonly ws: WebSocket }
  | { readonly open: false; readonly status: number; readonly code?: string };

/** Opens `url` with `headers`; resolves open, or with the HTTP status and error code of the refusal. */
export const tryUpgrade = (
  url: string,
  headers: Record<string, string> = {},
  timeoutMs = 5000,
): Promise<Upgrade> =>
  new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error(`no answer to the upgrade of ${url} within ${timeoutMs} ms`));
    }, timeoutMs);
    ws.on('error', () => undefined);
    ws.once('open', () => {
      clearTimeout(timer);
      resolve({ open: true, ws });
    });
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => {
        clearTimeout(timer);
        let code: string | undefined;
        try {
          code = (JSON.parse(body) as { error?: { code?: string } }).error?.code;
        } catch {
          code = undefined; // not our JSON error: the status says enough
        }
        resolve({ open: false, status: res.statusCode ?? 0, ...(code ? { code } : {}) });
        ws.terminate();
      });
    });
  });

/** Closes sockets and waits (bounded) until each has closed. */
export const closeAll = async (sockets: readonly WebSocket[], timeoutMs = 5000): Promise<void> => {
  await Promise.race([
    Promise.all(
      sockets.map(
        (ws) =>
          new Promise<void>((resolve) => {
            if (ws.readyState === ws.CLOSED) return resolve();
            ws.once('close', () => resolve());
            ws.close();
          }),
      ),
    ),
    new Promise<void>((resolve) => setTimeout(resolve, timeoutMs).unref()),
  ]);
};
