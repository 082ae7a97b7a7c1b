/**
 * The browser bundle (dist/stateweave-client.js, built by `npm run bundle`, which
 * `npm test` runs first): no Node built-ins anywhere in it, and it works as is.
 * A real Chromium run comes with e2e/.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { builtinModules } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { WebSocket } from 'ws';
import type * as Client from '@stateweave/client';
import type * as Yjs from 'yjs';
import {
  spawnNode,
  stopChild,
  tempDir,
  type ChildNode,
} from '../../server/dist/test/helpers/node.js';
import { waitFor } from './helpers.js';

const BUNDLE = fileURLToPath(new URL('../dist/stateweave-client.js', import.meta.url));
const METAFILE = fileURLToPath(new URL('../dist/stateweave-client.meta.json', import.meta.url));

interface Metafile {
  inputs: Record<string, { imports: Array<{ path: string; external?: boolean }> }>;
  outputs: Record<
    string,
    { imports: Array<{ path: string; external?: boolean }>; exports: string[]; entryPoint?: string }
  >;
}

const BUILTINS = new Set(builtinModules.flatMap((name) => [name, `node:${name}`]));
const isBuiltin = (specifier: string): boolean =>
  BUILTINS.has(specifier) || specifier.startsWith('node:');
const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
/** `from "x"`, `import("x")`, `require("x")`, `import "x"` for one module name. */
const importOf = (name: string): RegExp => {
  const quoted = `["'\`]${escape(name)}["'\`]`;
  return new RegExp(
    `(?:\\bfrom\\s*${quoted}|\\bimport\\s*\\(\\s*${quoted}\\s*\\)|\\brequire\\s*\\(\\s*${quoted}\\s*\\)|\\bimport\\s*${quoted})`,
  );
};

describe('the browser bundle', () => {
  it('imports nothing from outside itself, and no Node built-in', async () => {
    const meta = JSON.parse(await readFile(METAFILE, 'utf8')) as Metafile;
    const output = Object.values(meta.outputs).find((o) => o.entryPoint !== undefined);
    assert.ok(output, 'the metafile describes the bundle');
    assert.deepEqual(output.imports, [], 'the bundle has no external imports');
    for (const [input, { imports }] of Object.entries(meta.inputs)) {
      assert.ok(!isBuiltin(input), `${input} is not a Node built-in`);
      for (const imported of imports)
        assert.ok(!isBuiltin(imported.path), `${input} imports ${imported.path}`);
    }
    assert.ok(
      Object.keys(meta.inputs).some((i) => i.includes('node_modules/yjs/')),
      'yjs is bundled',
    );
    assert.deepEqual(output.exports.sort(), [
      'Awareness',
      'StateweaveClientError',
      'Y',
      'createClient',
    ]);
  });

  it('contains no import or require of a Node built-in in its text', async () => {
    const text = await readFile(BUNDLE, 'utf8');
    // Report the offending snippet, not the 100 KiB bundle.
    const found = (pattern: RegExp): string | undefined => {
      const match = pattern.exec(text);
      return match
        ? text.slice(Math.max(0, match.index - 40), match.index + match[0].length + 40)
        : undefined;
    };
    // The matcher finds what it is meant to find (so passing means something).
    for (const sample of [
      'import{x}from"node:fs";',
      "await import('crypto')",
      'require("ws")',
      'import "path";',
    ]) {
      assert.ok(
        ['node:fs', 'crypto', 'ws', 'path'].some((n) => importOf(n).test(sample)),
        sample,
      );
    }
    for (const name of [...BUILTINS, 'ws']) {
      assert.equal(found(importOf(name)), undefined, `the bundle refers to ${name}`);
    }
    assert.equal(found(/\brequire\s*\(/), undefined, 'the bundle is ESM without require()');
  });

  describe('used as is', () => {
    let data: Awaited<ReturnType<typeof tempDir>>;
    let node: ChildNode;
    before(async () => {
      data = await tempDir();
      node = await spawnNode(data.path);
    });
    after(async () => {
      await stopChild(node);
      await data.remove();
    });

    it('syncs a document through the bundled SDK and its bundled Yjs', async () => {
      // Typed through the package's declarations; the bundle exports the same API plus Y.
      type Bundle = typeof Client & { Y: typeof Yjs };
      const bundle = (await import(pathToFileURL(BUNDLE).href)) as Bundle;
      const a = bundle.createClient({ url: node.wsUrl, WebSocket });
      const b = bundle.createClient({ url: node.wsUrl, WebSocket });
      const ha = a.open('bundle');
      const hb = b.open('bundle');
      await Promise.all([ha.synced, hb.synced]);
      const map = new bundle.Y.Map<number>();
      ha.doc.getArray('items').push([map]);
      map.set('n', 42);
      // Two transactions (the push, then the set): b may get them in two frames.
      await waitFor(
        () => JSON.stringify(hb.doc.getArray('items').toJSON()) === '[{"n":42}]',
        'b to receive the item and its value',
      );
      assert.deepEqual(hb.doc.getArray('items').toJSON(), [{ n: 42 }]);
      await ha.whenSaved();
      await Promise.all([a.destroy(), b.destroy()]);
    });
  });
});
