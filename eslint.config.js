// Lint: type-aware checks that catch real bugs (floating promises, switches that
// miss a case) and the layer rules of ARCHITECTURE.md, so an import that points
// the wrong way fails `npm test` instead of waiting for a reviewer.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** Folders of server/src, each with the folders it must not import from. */
const layers = {
  // Storage knows bytes and keys, nothing above it.
  storage: ['hub', 'history', 'functions', 'cluster', 'http', 'transport', 'auth', 'limits'],
  // The hub knows Yjs and defines the ports it calls out through.
  hub: ['history', 'functions', 'cluster', 'http', 'transport', 'auth', 'limits'],
  // The history reads the store and writes through the hub; the edges serve it.
  history: ['functions', 'cluster', 'http', 'transport', 'auth', 'limits'],
  // Webhooks read the store's change log; they never see documents' rooms or clients.
  webhooks: ['hub', 'functions', 'cluster', 'http', 'transport', 'auth', 'limits'],
  auth: ['hub', 'storage', 'functions', 'cluster', 'http', 'transport', 'limits'],
  limits: ['hub', 'storage', 'functions', 'cluster', 'http', 'transport', 'auth'],
  // Replication talks to the hub; it never sees clients or HTTP.
  cluster: ['functions', 'http', 'transport'],
  // Functions produce updates into the hub; they never see sockets or HTTP.
  functions: ['http', 'transport'],
  // HTTP and WebSocket edges are siblings: neither imports the other.
  http: ['transport'],
  transport: ['http'],
};

/**
 * Node-to-node code reaches the edges only through a port (node-ports.ts).
 * Files that still import cluster internals would be listed here; the list may
 * only shrink, and it is empty.
 */
/** @type {string[]} */
const clusterImportsToRemove = [];

const forbid = (folders, message) =>
  folders.map((folder) => ({ group: [`../${folder}/*`, `../${folder}`], message }));

const restrict = (files, patterns, ignores = []) => ({
  files,
  ignores,
  rules: { 'no-restricted-imports': ['error', { patterns }] },
});

const layerConfigs = Object.entries(layers).flatMap(([layer, denied]) => {
  const files = [`server/src/${layer}/**/*.ts`];
  const own = forbid(denied, `server/src/${layer} must not import this layer (ARCHITECTURE.md)`);
  if (!['functions', 'http', 'transport'].includes(layer)) return [restrict(files, own)];
  const viaPort = forbid(['cluster'], 'node-to-node code is reached through a port, not imported');
  const pending = clusterImportsToRemove.filter((f) => f.startsWith(`server/src/${layer}/`));
  const pendingConfigs = pending.length > 0 ? [restrict(pending, own)] : [];
  return [restrict(files, [...own, ...viaPort], pending), ...pendingConfigs];
});

export default tseslint.config(
  {
    ignores: [
      '**/node_modules/**',
      '**/dist/**',
      '**/dist-test/**',
      'demo-app/public/**',
      'server/bench/results/**',
      'test-results/**',
      '.readme-test/**',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          // node:test runs what test() returns; awaiting it would serialise nothing.
          allowForKnownSafeCalls: [
            { from: 'package', package: 'node:test', name: ['test', 'it', 'describe', 'suite'] },
          ],
        },
      ],
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: false }],
      // An awaited value that is not a promise (a method not called) waits for nothing.
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/switch-exhaustiveness-check': [
        'error',
        { considerDefaultExhaustiveForUnions: true },
      ],
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' },
      ],
      'no-empty': ['error', { allowEmptyCatch: false }],
    },
  },
  {
    files: ['**/*.mjs', '**/*.js'],
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        Buffer: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
        setImmediate: 'readonly',
        URL: 'readonly',
        performance: 'readonly',
        TextEncoder: 'readonly',
        TextDecoder: 'readonly',
        AbortController: 'readonly',
        fetch: 'readonly',
      },
    },
  },
  ...layerConfigs,
  {
    // The SDK runs in browsers: it must never pull in the node.
    files: ['client-sdk/src/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ group: ['@stateweave/server', '@stateweave/server/*', '../../server/*'] }] },
      ],
    },
  },
);
