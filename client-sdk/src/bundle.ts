/**
 * Entry of the browser bundle `dist/stateweave-client.js` (scripts/bundle.mjs):
 * the SDK plus the Yjs it was built with, for pages without a bundler. Use this
 * `Y` for shared types you create (`new Y.Map()`), so that there is one Yjs.
 */
export * from './index.js';
export * as Y from 'yjs';
export { Awareness } from 'y-protocols/awareness';
