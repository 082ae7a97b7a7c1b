/** Mounts a React view into a new element, under StrictMode, with the session's client. */
import { StrictMode, type ReactNode } from 'react';
import { createRoot } from 'react-dom/client';
import { StateweaveProvider } from '@stateweave/client/react';
import type { Session } from './session.js';

export const mountView = (session: Session, view: ReactNode): HTMLElement => {
  const element = document.createElement('div');
  createRoot(element).render(
    <StrictMode>
      <StateweaveProvider client={session.client}>{view}</StateweaveProvider>
    </StrictMode>,
  );
  return element;
};
