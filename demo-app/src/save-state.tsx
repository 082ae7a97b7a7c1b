/** The "saved / saving… / syncing…" indicator of one document, on `useSaved`. */
import type { DocHandle } from '@stateweave/client';
import { useSaved } from '@stateweave/client/react';

export const SaveState = ({ handle, testId }: { handle: DocHandle; testId: string }) => {
  const { synced, pending, saved, error } = useSaved(handle);
  const label = !synced ? (error ? 'not synced' : 'syncing…') : saved ? 'saved' : 'saving…';
  const title = !synced
    ? (error?.message ?? 'waiting for the node')
    : saved
      ? 'every change is stored on the node'
      : `${pending} change(s) not yet stored on the node`;
  return (
    <span
      className="save"
      data-testid={testId}
      data-state={!synced ? 'unsynced' : saved ? 'saved' : 'saving'}
      title={title}
    >
      {label}
    </span>
  );
};
