/**
 * Function calls from components: `useInvoke` (call on demand, e.g. from a
 * click) and `useQuery` (run a read-only function now and whenever its input
 * changes). Both keep the state of the latest call only: an older answer that
 * arrives late never overwrites a newer one, and a query's `data` always
 * belongs to its current input. `createFunctionHooks<F>()` gives
 * both typed by the app's function map, so `fn`, input and output are checked.
 */
import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import type { FunctionTypes, InvokeOptions, UntypedFunctions } from '../functions.js';
import { useClient } from './provider.js';

export interface CallState<O> {
  readonly status: 'idle' | 'pending' | 'done' | 'error';
  /** The output of the latest call that succeeded. */
  readonly data: O | undefined;
  /** Why the latest call failed (usually a `StateweaveClientError` with a `code`). */
  readonly error: Error | undefined;
  /** How long the latest finished call took, measured here. */
  readonly ms: number | undefined;
}

export interface Invoker<I, O> extends CallState<O> {
  /** Invokes the function; also resolves or rejects like `client.invoke`. */
  invoke(input: I, options?: InvokeOptions): Promise<O>;
}

export interface Query<O> extends CallState<O> {
  /** Runs the query again with the same input. */
  refetch(): void;
}

export interface QueryOptions {
  /** false: do not run (yet), e.g. until an input is complete. @default true */
  readonly enabled?: boolean;
}

const IDLE: CallState<never> = { status: 'idle', data: undefined, error: undefined, ms: undefined };

const asError = (err: unknown): Error => (err instanceof Error ? err : new Error(String(err)));

export const useInvoke = <
  F extends FunctionTypes<F> = UntypedFunctions,
  K extends keyof F & string = keyof F & string,
>(
  fn: K,
): Invoker<F[K]['input'], F[K]['output']> => {
  const client = useClient<F>();
  const [state, setState] = useState<CallState<F[K]['output']>>(IDLE);
  const latest = useRef(0);
  const invoke = useCallback(
    async (input: F[K]['input'], options?: InvokeOptions): Promise<F[K]['output']> => {
      const call = ++latest.current;
      const started = performance.now();
      setState((prev) => ({ ...prev, status: 'pending' }));
      try {
        const data = await client.invoke(fn, input, options);
        const ms = performance.now() - started;
        if (call === latest.current) setState({ status: 'done', data, error: undefined, ms });
        return data;
      } catch (err) {
        const ms = performance.now() - started;
        if (call === latest.current)
          setState((prev) => ({ status: 'error', data: prev.data, error: asError(err), ms }));
        throw err;
      }
    },
    [client, fn],
  );
  return useMemo(() => ({ ...state, invoke }), [state, invoke]);
};

export const useQuery = <
  F extends FunctionTypes<F> = UntypedFunctions,
  K extends keyof F & string = keyof F & string,
>(
  fn: K,
  input: F[K]['input'],
  options: QueryOptions = {},
): Query<F[K]['output']> => {
  const client = useClient<F>();
  const enabled = options.enabled ?? true;
  // The input by value: a new object literal per render must not re-run the query.
  const key = JSON.stringify(input);
  // The state of the latest call, and the input it was for.
  const [latest, setLatest] = useState<{ key: string; state: CallState<F[K]['output']> }>({
    key,
    state: IDLE,
  });
  const [runs, setRuns] = useState(0);
  useEffect(() => {
    if (!enabled) return;
    const abort = new AbortController();
    const started = performance.now();
    const settle = (state: CallState<F[K]['output']>): void => {
      if (!abort.signal.aborted) setLatest({ key, state });
    };
    setLatest((prev) => ({ key, state: { ...prev.state, status: 'pending' } }));
    client.query(fn, JSON.parse(key) as F[K]['input'], { signal: abort.signal }).then(
      (data) => settle({ status: 'done', data, error: undefined, ms: performance.now() - started }),
      (err: unknown) =>
        settle({
          status: 'error',
          data: undefined,
          error: asError(err),
          ms: performance.now() - started,
        }),
    );
    return () => abort.abort();
  }, [client, fn, key, enabled, runs]);
  const refetch = useCallback(() => setRuns((n) => n + 1), []);
  // Data belongs to one input: for a new input, nothing until its answer is in.
  const state: CallState<F[K]['output']> =
    latest.key === key ? latest.state : { ...IDLE, status: enabled ? 'pending' : 'idle' };
  return useMemo(() => ({ ...state, refetch }), [state, refetch]);
};

/** `useInvoke` and `useQuery` typed by the app's function map `F`. */
export const createFunctionHooks = <F extends FunctionTypes<F>>(): {
  useInvoke: <K extends keyof F & string>(fn: K) => Invoker<F[K]['input'], F[K]['output']>;
  useQuery: <K extends keyof F & string>(
    fn: K,
    input: F[K]['input'],
    options?: QueryOptions,
  ) => Query<F[K]['output']>;
} => ({
  useInvoke: (fn) => useInvoke<F, typeof fn>(fn),
  useQuery: (fn, input, options) => useQuery<F, typeof fn>(fn, input, options),
});
