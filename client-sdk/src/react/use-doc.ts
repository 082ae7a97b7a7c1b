/**
 * `useDoc(name)`: the open handle of a document, for as long as the component
 * is mounted. Every component that asks for the same name shares one handle
 * (one Y.Doc, one socket); see doc-registry.ts for why StrictMode's double
 * mount neither opens a second one nor closes the first.
 */
import { useEffect, useReducer } from 'react';
import type { DocHandle } from '../doc-handle.js';
import { docRegistryOf } from './doc-registry.js';
import { useClient } from './provider.js';

export const useDoc = (name: string): DocHandle => {
  const registry = docRegistryOf(useClient());
  const [, rerender] = useReducer((n: number) => n + 1, 0);
  const handle = registry.get(name);
  useEffect(() => {
    const held = registry.hold(name);
    // The rendered handle was closed before this effect ran: render the new one.
    if (held.handle !== handle) rerender();
    return held.release;
  }, [registry, name, handle]);
  return handle;
};
