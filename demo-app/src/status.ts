/** Connection and save state of open document handles, for the header badge and per-view indicators. */
import type { DocHandle } from '@stateweave/client';

export const saveLabel = (handle: DocHandle): string => (handle.pending > 0 ? 'saving…' : 'saved');

/** Calls `render` now and on every status/pending/saved/synced change of `handle`. */
export const watchHandle = (handle: DocHandle, render: () => void): void => {
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
    el.dataset.state = handle.pending > 0 ? 'saving' : 'saved';
    el.title =
      handle.pending > 0
        ? `${handle.pending} change(s) not yet stored on the node`
        : 'every change is stored on the node';
  });
  return el;
};

/** The header badge: the worst status over all handles the app has open. */
export const trackConnection = (badge: HTMLElement): ((handle: DocHandle) => void) => {
  const handles: DocHandle[] = [];
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
  };
};
