/**
 * One HTTP request to the node the client uses, for the SDK's HTTP parts
 * (`client.admin`): the token in `Authorization`, refreshed once when the node
 * refuses it (as for function calls), and the node's JSON errors
 * (`{"error":{"code","message"}}`) turned into StateweaveClientError with the
 * same code; what is not such an error becomes HTTP_ERROR, a failed fetch NETWORK.
 */
import { StateweaveClientError } from './errors.js';
import type { FetchLike, RequestInitLike, ResponseLike } from './functions.js';
import type { TokenSource } from './token-source.js';

export interface NodeHttpOptions {
  /** The HTTP base of the node to ask (`http://host:port`). */
  readonly base: () => string;
  readonly tokens: TokenSource;
  readonly fetch: FetchLike;
}

export interface NodeHttpRequest {
  readonly method: RequestInitLike['method'];
  /** Path and query, e.g. `/v1/docs?prefix=a`. */
  readonly path: string;
  /** Sent as JSON. */
  readonly json?: unknown;
  /** Sent as application/octet-stream. */
  readonly bytes?: Uint8Array;
  /** What to ask for. @default 'json' */
  readonly accept?: 'json' | 'bytes';
  readonly signal?: AbortSignal;
}

export interface NodeHttp {
  /** Resolves with the parsed JSON of a 2xx answer. */
  json(request: NodeHttpRequest): Promise<unknown>;
  /** Resolves with the body of a 2xx answer (asked for as application/octet-stream). */
  bytes(request: NodeHttpRequest): Promise<Uint8Array>;
}

const parse = (text: string): unknown => {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined; // not JSON: reported with the status
  }
};

export const createNodeHttp = (options: NodeHttpOptions): NodeHttp => {
  const send = async (request: NodeHttpRequest): Promise<ResponseLike> => {
    const binary = request.accept === 'bytes';
    for (let refreshed = false; ; refreshed = true) {
      const token = await options.tokens.get();
      const headers: Record<string, string> = {
        accept: binary ? 'application/octet-stream' : 'application/json',
      };
      let body: string | Uint8Array<ArrayBuffer> | undefined;
      if (request.json !== undefined) {
        headers['content-type'] = 'application/json';
        body = JSON.stringify(request.json);
      } else if (request.bytes !== undefined) {
        headers['content-type'] = 'application/octet-stream';
        // A copy on its own ArrayBuffer: what fetch's BodyInit takes.
        body = new Uint8Array(request.bytes);
      }
      if (token !== undefined) headers.authorization = `Bearer ${token}`;
      const url = `${options.base()}${request.path}`;
      let res: ResponseLike;
      try {
        res = await options.fetch(url, {
          method: request.method,
          headers,
          ...(body !== undefined ? { body } : {}),
          ...(request.signal ? { signal: request.signal } : {}),
        });
      } catch (err) {
        throw new StateweaveClientError(
          'NETWORK',
          `cannot reach ${url}: ${(err as Error).message}`,
          { cause: err },
        );
      }
      if (res.status !== 401 || refreshed || !options.tokens.canRefresh) return res;
      options.tokens.invalidate();
    }
  };

  const failure = async (res: ResponseLike): Promise<StateweaveClientError> => {
    const text = await res.text();
    const error = (parse(text) as { error?: { code?: unknown; message?: unknown } } | undefined)
      ?.error;
    if (typeof error?.code === 'string' && typeof error.message === 'string')
      return new StateweaveClientError(error.code, error.message, { status: res.status });
    return new StateweaveClientError('HTTP_ERROR', `HTTP ${res.status}: ${text.slice(0, 200)}`, {
      status: res.status,
    });
  };

  return {
    async json(request) {
      const res = await send(request);
      if (!res.ok) throw await failure(res);
      const text = await res.text();
      const value = parse(text);
      if (value === undefined)
        throw new StateweaveClientError(
          'INVALID_RESPONSE',
          `the node answered ${request.method} ${request.path} with a body that is not JSON`,
          { status: res.status },
        );
      return value;
    },
    async bytes(request) {
      const res = await send({ ...request, accept: 'bytes' });
      if (!res.ok) throw await failure(res);
      if (!res.arrayBuffer)
        throw new StateweaveClientError(
          'INVALID_OPTIONS',
          'the `fetch` given to createClient answers without arrayBuffer(): binary reads need it',
        );
      return new Uint8Array(await res.arrayBuffer());
    },
  };
};
