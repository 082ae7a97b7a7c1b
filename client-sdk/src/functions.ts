/**
 * Calls to functions. The fast path is an open, synced document socket of this
 * client (message Invoke, see socket-calls.ts): no request per call, many in
 * flight. Without one, HTTP: `POST {node}/v1/functions/:name/invoke` with the
 * input as the JSON body, `Authorization: Bearer <token>` and, for invocations,
 * an `Idempotency-Key`. A 2xx body (or an ok Result) is the function's result as
 * JSON; an error (`{"error":{"code","message"}}` or an error Result) becomes a
 * `StateweaveClientError` with that code and the HTTP status.
 *
 * An invocation without an idempotency key is sent once (a retry could apply
 * twice): if its socket closes before the answer it fails with NETWORK. A query
 * (read-only) or a keyed invocation is sent again: on the next socket or over
 * HTTP, and a query that cannot reach one node over HTTP is tried on the next.
 */
import { StateweaveClientError } from './errors.js';
import type { InvokeResultMessage } from './protocol.js';
import type { SocketCaller } from './socket-calls.js';
import type { TokenSource } from './token-source.js';

/** The input and output types of one function. */
export interface FunctionSignature {
  readonly input: unknown;
  readonly output: unknown;
}

/** Function types by name: `{ trackVisit: { input: { page: string }; output: { unique: number } } }`. */
export type FunctionTypes<F> = { readonly [K in keyof F]: FunctionSignature };

/** Without a type map: any function name, `unknown` input and output. */
export type UntypedFunctions = Record<
  string,
  { readonly input: unknown; readonly output: unknown }
>;

export interface CallOptions {
  /** Aborts the request (the call rejects with code NETWORK). */
  readonly signal?: AbortSignal;
}

export interface InvokeOptions extends CallOptions {
  /** Sent as `Idempotency-Key`: a retried invocation with the same key returns the first result. */
  readonly idempotencyKey?: string;
}

export interface ResponseLike {
  readonly ok: boolean;
  readonly status: number;
  text(): Promise<string>;
  /** Needed only by `client.admin`'s binary reads (`exportDoc`, `export`). */
  arrayBuffer?(): Promise<ArrayBuffer>;
}

export interface RequestInitLike {
  /** POST for function calls; GET for history reads (`client.history`); DELETE for `client.admin.delete`. */
  readonly method: 'GET' | 'POST' | 'DELETE';
  readonly headers: Record<string, string>;
  /** JSON text, or a binary Yjs update (`client.admin.import`). */
  readonly body?: string | Uint8Array<ArrayBuffer>;
  readonly signal?: AbortSignal;
}

/** `globalThis.fetch` satisfies this. */
export type FetchLike = (url: string, init: RequestInitLike) => Promise<ResponseLike>;

export interface FunctionCaller {
  call(
    kind: 'invoke' | 'query',
    name: string,
    input: unknown,
    options: InvokeOptions,
  ): Promise<unknown>;
}

export interface FunctionCallerOptions {
  /** HTTP bases (`http://host:port`), in failover order. */
  readonly httpBases: readonly string[];
  /** Index of the base to try first (the node the client last connected to). */
  readonly preferred: () => number;
  readonly tokens: TokenSource;
  readonly fetch: FetchLike;
  /** An open, synced socket to call over (preferably to the preferred node); undefined: use HTTP. */
  readonly socket?: () => SocketCaller | undefined;
}

/** Sockets a call tries (each closing under it) before it goes over HTTP. */
const MAX_SOCKET_ATTEMPTS = 3;

const isErrorBody = (value: unknown): value is { error: { code: string; message: string } } => {
  const error = (value as { error?: { code?: unknown; message?: unknown } } | null)?.error;
  return typeof error?.code === 'string' && typeof error.message === 'string';
};

const parseJson = (text: string): { ok: true; value: unknown } | { ok: false } => {
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch {
    return { ok: false }; // SyntaxError: the body is not JSON
  }
};

export const createFunctionCaller = (options: FunctionCallerOptions): FunctionCaller => {
  const { httpBases, tokens } = options;

  const request = async (
    base: string,
    name: string,
    body: string,
    headers: Record<string, string>,
    signal?: AbortSignal,
  ) => {
    const url = `${base}/v1/functions/${encodeURIComponent(name)}/invoke`;
    try {
      return await options.fetch(url, {
        method: 'POST',
        headers,
        body,
        ...(signal ? { signal } : {}),
      });
    } catch (err) {
      throw new StateweaveClientError(
        'NETWORK',
        `${name}: cannot reach ${base}: ${(err as Error).message}`,
        { cause: err },
      );
    }
  };

  const once = async (
    base: string,
    name: string,
    body: string,
    extra: Record<string, string>,
    signal?: AbortSignal,
  ): Promise<ResponseLike> => {
    for (let refreshed = false; ; refreshed = true) {
      const token = await tokens.get();
      const headers: Record<string, string> = {
        'content-type': 'application/json',
        accept: 'application/json',
        ...extra,
      };
      if (token !== undefined) headers.authorization = `Bearer ${token}`;
      const res = await request(base, name, body, headers, signal);
      // A 401 was not executed: safe to repeat once with a fresh token.
      if (res.status !== 401 || refreshed || !tokens.canRefresh) return res;
      tokens.invalidate();
    }
  };

  /** The HTTP path: one node for an invocation; each node in turn for a query. */
  const overHttp = async (
    kind: 'invoke' | 'query',
    name: string,
    body: string,
    callOptions: InvokeOptions,
  ): Promise<unknown> => {
    const extra: Record<string, string> = {};
    if (kind === 'invoke' && callOptions.idempotencyKey !== undefined)
      extra['idempotency-key'] = callOptions.idempotencyKey;
    const first = options.preferred() % httpBases.length;
    // Invocations go to one node; queries try each node once until one answers.
    const tries = kind === 'query' ? httpBases.length : 1;
    let res: ResponseLike | undefined;
    for (let i = 0; i < tries; i++) {
      try {
        res = await once(
          httpBases[(first + i) % httpBases.length]!,
          name,
          body,
          extra,
          callOptions.signal,
        );
        break;
      } catch (err) {
        if (
          i === tries - 1 ||
          (err as StateweaveClientError).code !== 'NETWORK' ||
          callOptions.signal?.aborted
        )
          throw err;
      }
    }
    const text = await res!.text();
    const parsed = text === '' ? { ok: true as const, value: undefined } : parseJson(text);
    if (res!.ok) {
      if (!parsed.ok)
        throw new StateweaveClientError('INVALID_RESPONSE', `${name}: the result is not JSON`, {
          status: res!.status,
        });
      return parsed.value;
    }
    if (parsed.ok && isErrorBody(parsed.value)) {
      throw new StateweaveClientError(parsed.value.error.code, parsed.value.error.message, {
        status: res!.status,
      });
    }
    throw new StateweaveClientError(
      'HTTP_ERROR',
      `${name}: HTTP ${res!.status}: ${text.slice(0, 200)}`,
      { status: res!.status },
    );
  };

  /** An answer over the socket as a result or a thrown error, like an HTTP answer. */
  const fromResult = (name: string, result: InvokeResultMessage): unknown => {
    if (!result.ok)
      throw new StateweaveClientError(result.code, result.message, { status: result.status });
    const parsed =
      result.json === '' ? { ok: true as const, value: undefined } : parseJson(result.json);
    if (!parsed.ok)
      throw new StateweaveClientError('INVALID_RESPONSE', `${name}: the result is not JSON`, {
        status: 200,
      });
    return parsed.value;
  };

  return {
    async call(kind, name, input, callOptions) {
      if (typeof name !== 'string' || name === '')
        throw new StateweaveClientError('INVALID_OPTIONS', 'a function name is required');
      const body = JSON.stringify(input === undefined ? null : input);
      const key = kind === 'invoke' ? callOptions.idempotencyKey : undefined;
      // Sent twice, a query still only reads and a keyed invocation is answered once per key.
      const repeatable = kind === 'query' || key !== undefined;
      // '' is no key on the socket; over HTTP the node refuses it, as it always did.
      for (let attempt = 0; attempt < MAX_SOCKET_ATTEMPTS && key !== ''; attempt++) {
        const socket = options.socket?.();
        if (!socket) break;
        const outcome = await socket.call({
          kind,
          name,
          input: body,
          ...(key !== undefined ? { idempotencyKey: key } : {}),
          ...(callOptions.signal ? { signal: callOptions.signal } : {}),
        });
        if (outcome.type === 'answered') {
          // A refused token ran nothing: HTTP fetches a fresh one and tries again.
          if (!outcome.result.ok && outcome.result.status === 401 && tokens.canRefresh) break;
          return fromResult(name, outcome.result);
        }
        if (outcome.type === 'lost' && !repeatable) {
          throw new StateweaveClientError(
            'NETWORK',
            `${name}: the connection to ${socket.url ?? 'the node'} closed before the answer; whether the invocation ran is unknown (pass an idempotencyKey to make it safe to retry)`,
          );
        }
      }
      return overHttp(kind, name, body, callOptions);
    },
  };
};
