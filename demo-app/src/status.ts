/** Connection and save state of open document handles, for the header badge and per-view indicators. */
import type { DocHandle } from '@stateweave/client';

/** Refusals that no reconnect fixes: the page needs another token. */
const REFUSALS = new Set(['UNAUTHORIZED', 'TOKEN_EXPIRED', 'FORBIDDEN', 'TOKEN_FAILED']);

/** Whether the handle has synced at least once (a document that never did is not "saved"). */
const everSynced = new WeakSet<DocHandle>();

export const saveLabel = (handle: DocHandle): string => {
  if (!everSynced.has(handle)) return handle.lastError ? 'not synced' : 'syncing…';
  return handle.pending > 0 ? 'saving…' : 'saved';
};

/** Calls `render` now and on every status/pending/saved/synced change of `handle`. */
export const watchHandle = (handle: DocHandle, render: () => void): void => {
  handle.synced.then(
    () => {
      everSynced.add(handle);
      render();
    },
    () => render(), // refused or closed before syncing: the label says so
  );
  handle.on('error', render);
  handle.on('status', render);
  handle.on('pending', render);
  handle.on('saved', render);
  handle.on('synced', render);
  render();
};

/** A save indicator element bound to one handle. */
export const saveIndicator = (handle: DocHandle, testId: string): HTMLElement => {
  const el = document.createElement('span');
  el.className = 'save';
  el.dataset.testid = testId;
  watchHandle(handle, () => {
    const label = saveLabel(handle);
    el.textContent = label;
    el.dataset.state = label === 'saved' ? 'saved' : label === 'saving…' ? 'saving' : 'unsynced';
    el.title =
      label === 'saved'
        ? 'every change is stored on the node'
        : label === 'saving…'
          ? `${handle.pending} change(s) not yet stored on the node`
          : (handle.lastError?.message ?? 'waiting for the node');
  });
  return el;
};

/**
 * The header badge: the worst status over all handles the app has open; and the
 * banner that shows a refusal (a missing, expired or too narrow token) with the
 * node's reason and how to get in, instead of leaving it in the console.
 */
export const trackConnection = (
  badge: HTMLElement,
  banner: HTMLElement,
): ((handle: DocHandle) => void) => {
  const handles: DocHandle[] = [];
  const showRefusal = (handle: DocHandle): void => {
    const err = handle.lastError;
    if (!err || !REFUSALS.has(err.code)) return;
    banner.hidden = false;
    banner.dataset.code = err.code;
    banner.textContent =
      err.code === 'FORBIDDEN'
        ? `The node refused ${handle.name}: ${err.message}. Your token does not cover this document.`
        : `The node refused this page (${err.code}): ${err.message}. This node needs a token: open the page with ?token=… (mint one with: npx stateweave token --docs '*' --rights read,write,invoke).`;
  };
  const order = ['offline', 'disconnected', 'connecting', 'connected'] as const;
  const render = (): void => {
    const worst =
      handles.map((h) => h.status).sort((a, b) => order.indexOf(a) - order.indexOf(b))[0] ??
      'connecting';
    badge.textContent = worst;
    badge.dataset.state = worst;
  };
  return (handle) => {
    handles.push(handle);
    watchHandle(handle, render);
    handle.on('error', () => showRefusal(handle));
  };
};
