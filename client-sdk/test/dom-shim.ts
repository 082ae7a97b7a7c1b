/**
 * A DOM for React tests in Node: happy-dom's window and document as globals,
 * installed before react-dom is imported (import this module first).
 */
import { Window } from 'happy-dom';

const window = new Window({ url: 'http://localhost/' });
const globals = globalThis as unknown as Record<string, unknown>;
globals.window = window;
globals.document = window.document;
globals.navigator = window.navigator; // react-dom sniffs the user agent

/** Closes the happy-dom window (its timers would keep the test process alive). */
export const closeDom = (): Promise<void> => window.happyDOM.close();
