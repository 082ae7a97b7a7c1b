/** Known hostile inputs: minimal reproductions the fuzzer found, kept as plain tests. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import * as Y from 'yjs';
import { encodeAwareness, encodeUpdate } from '@stateweave/client/protocol';
import { ERRORS, StateweaveError } from '../src/errors.js';
import { stockClient } from './helpers/clients.js';
import { docView } from './helpers/fuzz.js';
import { spawnNode, stopChild, tempDir } from './helpers/node.js';
import { waitFor } from './helpers/wait.js';
import { playScript } from './fuzz/edits.js';
import { ORIGIN, presenceView } from './fuzz/in-process.js';
import { openFuzzSocket } from './fuzz/ws-traffic.js';
import { healthy } from './fuzz/http-requests.js';
import {
  REPRODUCTIONS,
  deepAnyUpdate,
  deepAwarenessUpdate,
  deepJsonUpdate,
  expectCleanRefusal,
  fromHex,
  roomForRepro,
  stockClientOrNothing,
} from './fuzz/known-inputs.js';

describe('known hostile inputs (minimal reproductions found by the fuzzer)', () => {
  it(`refuses a delete set with a zero-length range with INVALID_UPDATE (${REPRODUCTIONS.zeroLengthDelete.update})`, async () => {
    const room = await roomForRepro();
    try {
      await expectCleanRefusal(room, fromHex(REPRODUCTIONS.zeroLengthDelete.update), [
        'INVALID_UPDATE',
      ]);
    } finally {
      room.destroy();
    }
  });

  it(`refuses an item whose origin lies in a GC struct with INVALID_UPDATE (${REPRODUCTIONS.originInGc.update} after ${REPRODUCTIONS.originInGc.base[0]})`, async () => {
    const room = await roomForRepro();
    try {
      // The base holds a zero-length struct itself, so the guard refuses it too;
      // either way the attack that follows must be refused cleanly.
      for (const base of REPRODUCTIONS.originInGc.base) {
        await expectCleanRefusal(room, fromHex(base), ['INVALID_UPDATE']);
      }
      await expectCleanRefusal(room, fromHex(REPRODUCTIONS.originInGc.update), ['INVALID_UPDATE']);
    } finally {
      room.destroy();
    }
  });

  it(`refuses an id past 2^53 with INVALID_UPDATE and the document stays encodable (${REPRODUCTIONS.idOutOfRange.update})`, async () => {
    const room = await roomForRepro();
    try {
      await expectCleanRefusal(room, fromHex(REPRODUCTIONS.idOutOfRange.update), [
        'INVALID_UPDATE',
      ]);
    } finally {
      room.destroy();
    }
  });

  it(`refuses a zero-length item without touching the document (${REPRODUCTIONS.zeroLengthItem.update})`, async () => {
    const room = await roomForRepro();
    try {
      await room.applyUpdate(
        Y.encodeStateAsUpdate(
          playScript([{ kind: 'insert-text', client: 0, at: 0, text: 'kept', bold: false }])
            .docs[0]!,
        ),
        ORIGIN,
      );
      await expectCleanRefusal(room, fromHex(REPRODUCTIONS.zeroLengthItem.update), [
        'INVALID_UPDATE',
      ]);
    } finally {
      room.destroy();
    }
  });

  it(
    `shows a fresh client what the room holds after an update that overlaps known clocks (${REPRODUCTIONS.overlappingPending.update} after ${REPRODUCTIONS.overlappingPending.base[0]})`,
    {
      todo: 'BUG: the room keeps the slice pending, but its sync step 2 (encodeStateAsUpdate merges the pending slice in) makes fresh clients integrate it: clients and node diverge',
    },
    async () => {
      const room = await roomForRepro();
      try {
        for (const base of REPRODUCTIONS.overlappingPending.base)
          await room.applyUpdate(fromHex(base), ORIGIN);
        try {
          await room.applyUpdate(fromHex(REPRODUCTIONS.overlappingPending.update), ORIGIN);
        } catch (err) {
          assert.ok(
            err instanceof StateweaveError,
            `a refusal is a StateweaveError, got ${String(err)}`,
          );
        }
        const fresh = new Y.Doc();
        Y.applyUpdate(fresh, Y.encodeStateAsUpdate(room.doc));
        assert.deepEqual(docView(fresh), docView(room.doc));
        fresh.destroy();
      } finally {
        room.destroy();
      }
    },
  );

  it('refuses deeply nested JSON content (legacy content type 2, 10 000 levels, 20 KB) without touching the document', async () => {
    const room = await roomForRepro();
    try {
      await expectCleanRefusal(room, deepJsonUpdate(10_000), ['INVALID_UPDATE']);
    } finally {
      room.destroy();
    }
  });

  it(
    // Found by this suite (RangeError from JSON.stringify in the broadcast); fixed by MAX_AWARENESS_DEPTH.
    'refuses a deeply nested awareness state (10 000 levels, 20 KB) with INVALID_FRAME, or keeps presence encodable',
    async () => {
      const room = await roomForRepro();
      try {
        const before = presenceView(room.awareness);
        try {
          room.applyAwareness(deepAwarenessUpdate(4242, 10_000), ORIGIN);
        } catch (err) {
          assert.ok(
            err instanceof StateweaveError && err.code === 'INVALID_FRAME',
            `expected INVALID_FRAME, got ${String(err)}`,
          );
          assert.equal(presenceView(room.awareness), before);
        }
        assert.doesNotThrow(
          () => room.encodeAwarenessStates(),
          'presence can still be sent to a newcomer',
        );
      } finally {
        room.destroy();
      }
    },
  );

  it('keeps every document readable as JSON: nested values (ContentAny, depth 3000-6000) are refused or readable', async () => {
    const dir = await tempDir();
    const node = await spawnNode(dir.path);
    try {
      const answers: string[] = [];
      for (let depth = 3000; depth <= 6000; depth += 100) {
        const name = `deep-${depth}`;
        const post = await fetch(`${node.url}/v1/docs/${name}/updates`, {
          method: 'POST',
          body: deepAnyUpdate(depth),
        });
        const get = await fetch(`${node.url}/v1/docs/${name}`);
        await get.arrayBuffer();
        answers.push(`${depth}: POST ${post.status}, GET ${get.status}`);
        assert.ok([200, 422].includes(post.status), answers.at(-1));
        assert.ok(get.status < 500, answers.at(-1));
      }
      await healthy(node);
    } finally {
      await stopChild(node);
      await dir.remove();
    }
  });

  it(`survives idle unload of a document that received a zero-length item over a WebSocket (frame 000213${REPRODUCTIONS.zeroLengthItem.update})`, async () => {
    const dir = await tempDir();
    const node = await spawnNode(dir.path, ['--idle-unload-ms', '200']);
    try {
      const editor = await stockClient(node.wsUrl, 'repro');
      editor.doc.getText('text').insert(0, 'kept');
      await waitFor(
        async () => (await fetch(`${node.url}/v1/docs/repro`)).status === 200,
        'the edit to be stored',
      );
      const bad = await openFuzzSocket(node.wsUrl, 'repro');
      bad.ws.send(encodeUpdate(fromHex(REPRODUCTIONS.zeroLengthItem.update)));
      await waitFor(() => bad.closedWith, 'the node to refuse the frame');
      editor.destroy();
      await new Promise((resolve) => setTimeout(resolve, 1500)); // several idle-unload periods
      await healthy(node);
      const reader = await stockClientOrNothing(node.wsUrl, 'repro');
      assert.ok(reader, 'a newcomer syncs');
      assert.equal(reader.doc.getText('text').toString(), 'kept');
      reader.destroy();
      assert.equal(bad.closedWith?.code, ERRORS.INVALID_UPDATE.close, bad.closedWith?.reason);
    } finally {
      await stopChild(node);
      await dir.remove();
    }
  });

  it(
    // Before MAX_AWARENESS_DEPTH the newcomer's greeting threw inside a promise callback: the node exited.
    'survives a newcomer while a client whose awareness state is nested 10 000 levels deep does not finish closing',
    async () => {
      const dir = await tempDir();
      const node = await spawnNode(dir.path);
      try {
        const bad = await openFuzzSocket(node.wsUrl, 'repro');
        try {
          bad.ws.send(encodeAwareness(deepAwarenessUpdate(4242, 10_000)));
          // It stops reading, so the closing handshake never completes and its presence lingers.
          (bad.ws as unknown as { _socket: Socket })._socket.pause();
          await new Promise((resolve) => setTimeout(resolve, 300));
          (await stockClientOrNothing(node.wsUrl, 'repro'))?.destroy(); // its failure shows as the node's state below
          await healthy(node);
        } finally {
          bad.ws.terminate();
        }
      } finally {
        await stopChild(node);
        await dir.remove();
      }
    },
  );
});
