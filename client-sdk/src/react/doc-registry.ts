/**
 * Which documents React components hold open, per client, counted. `useDoc`
 * opens a document during render (so the first render already has the handle)
 * and holds it from its effect; the handle is closed only when nobody has held
 * it for a moment (see the delays below). That grace period is what makes StrictMode's
 * mount → unmount → mount, and a render React throws away, harmless: the
 * re-mount finds the same handle (same Y.Doc, same socket) still open.
 *
 * Handles the app opened itself with `client.open` before React did are never
 * closed here: whoever opened them closes them.
 */
import type { StateweaveClient } from '../client.js';
import type { DocHandle } from '../doc-handle.js';
import type { UntypedFunctions } from '../functions.js';

interface Entry {
  readonly handle: DocHandle;
  /** Opened by this registry (and so closed by it). */
  readonly owned: boolean;
  holders: number;
  closeTimer: ReturnType<typeof setTimeout> | undefined;
}

export interface DocRegistry {
  /** The open handle for `name`, opened now if needed. Not yet held: call `hold`. */
  get(name: string): DocHandle;
  /** Holds the open handle for `name` (opened if needed) until `release` runs. */
  hold(name: string): { readonly handle: DocHandle; readonly release: () => void };
}

type AnyClient = StateweaveClient<UntypedFunctions>;

/**
 * How long a handle opened by a render stays open before an effect holds it.
 * React runs effects after paint, later still for a transition or a suspended
 * tree: generous, since a render thrown away costs one idle socket for this long.
 */
const UNCLAIMED_MS = 10_000;
/** After the last holder lets go: StrictMode re-mounts in the same commit. */
const RELEASED_MS = 0;

const registries = new WeakMap<AnyClient, DocRegistry>();

const createDocRegistry = (client: AnyClient): DocRegistry => {
  const entries = new Map<string, Entry>();

  const scheduleClose = (name: string, entry: Entry, delayMs: number): void => {
    clearTimeout(entry.closeTimer);
    entry.closeTimer = setTimeout(() => {
      entry.closeTimer = undefined;
      if (entry.holders > 0 || entries.get(name) !== entry) return;
      entries.delete(name);
      if (entry.owned) void entry.handle.close();
    }, delayMs);
  };

  return {
    get(name) {
      const known = entries.get(name);
      if (known && !known.handle.closed) return known.handle;
      const alreadyOpen = client.documents.get(name);
      const owned = !alreadyOpen || alreadyOpen.closed;
      const handle = client.open(name);
      const entry: Entry = { handle, owned, holders: 0, closeTimer: undefined };
      entries.set(name, entry);
      // Opened by a render that may never commit: close it unless someone holds it.
      scheduleClose(name, entry, UNCLAIMED_MS);
      return handle;
    },
    hold(name) {
      const handle = this.get(name);
      const entry = entries.get(name)!;
      entry.holders++;
      clearTimeout(entry.closeTimer);
      entry.closeTimer = undefined;
      let released = false;
      const release = (): void => {
        if (released) return;
        released = true;
        entry.holders--;
        if (entry.holders === 0) scheduleClose(name, entry, RELEASED_MS);
      };
      return { handle, release };
    },
  };
};

/** The registry of `client` (one per client, made on first use). */
export const docRegistryOf = (client: AnyClient): DocRegistry => {
  let registry = registries.get(client);
  if (!registry) registries.set(client, (registry = createDocRegistry(client)));
  return registry;
};
