/** The SDK's React hooks as the demo uses them: function calls typed by its functions. */
import { useEffect } from 'react';
import type { DocHandle } from '@stateweave/client';
import { createFunctionHooks } from '@stateweave/client/react';
import type { DemoFunctions } from './functions.js';

export const { useInvoke, useQuery } = createFunctionHooks<DemoFunctions>();

/** Reports a handle to the header badge and refusal banner (status.ts). */
export type Track = (handle: DocHandle) => void;

/** Tracks `handle` from an effect (the tracker ignores a handle it already has). */
export const useTracked = (handle: DocHandle, track: Track): void => {
  useEffect(() => track(handle), [handle, track]);
};
