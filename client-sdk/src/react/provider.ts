/**
 * `StateweaveProvider` puts one client in React context; `useClient` reads it.
 * The provider does not create or destroy the client: the app owns its
 * lifetime (a client per page, created outside render, survives StrictMode).
 */
import { createContext, createElement, useContext, type ReactNode } from 'react';
import type { StateweaveClient } from '../client.js';
import { StateweaveClientError } from '../errors.js';
import type { FunctionTypes, UntypedFunctions } from '../functions.js';

// Stored untyped: each hook states the function types it expects (see createFunctionHooks).
const ClientContext = createContext<StateweaveClient<UntypedFunctions> | null>(null);

export interface StateweaveProviderProps<F extends FunctionTypes<F>> {
  readonly client: StateweaveClient<F>;
  readonly children?: ReactNode;
}

export const StateweaveProvider = <F extends FunctionTypes<F>>({
  client,
  children,
}: StateweaveProviderProps<F>): ReactNode =>
  createElement(
    ClientContext.Provider,
    { value: client as unknown as StateweaveClient<UntypedFunctions> },
    children,
  );

/** The client of the nearest `StateweaveProvider`; throws outside one. */
export const useClient = <F extends FunctionTypes<F> = UntypedFunctions>(): StateweaveClient<F> => {
  const client = useContext(ClientContext);
  if (!client)
    throw new StateweaveClientError(
      'INVALID_OPTIONS',
      'a Stateweave hook was used outside <StateweaveProvider client={…}>',
    );
  return client as unknown as StateweaveClient<F>;
};
