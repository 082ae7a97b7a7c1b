/** Hostile WebSocket traffic against a real node: frame recipes, sockets and the runs (serial, concurrent). */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import * as Y from 'yjs';
import * as decoding from 'lib0/decoding';
import * as encoding from 'lib0/encoding';
import { WebSocket } from 'ws';
import {
  decodeAwarenessUpdate,
  decodeClientMessage,
  encodeAwareness,
  encodeHello,
  encodeQueryAwareness,
  encodeSaved,
  encodeSyncStep1,
  encodeSyncStep2,
  encodeToken,
  encodeUpdate,
  type ClientMessage,
} from '@stateweave/client/protocol';
import { ERRORS } from '../../src/errors.js';
import { type Closed } from '../helpers/clients.js';
import { docView, hex, mutate, mutationsArb, type Mutation } from '../helpers/fuzz.js';
import { waitFor } from '../helpers/wait.js';
import { CLIENT_IDS, type Json, editArb, playScript } from './edits.js';
import { CASE_TIMEOUT_MS } from './in-process.js';

// ================================================================ c. hostile WebSocket traffic

export const NET_MAX_FRAME_BYTES = 64 * 1024;

/** How one frame of hostile traffic is made. */
export type FrameRecipe =
  | { readonly kind: 'update'; readonly pick: number; readonly step2: boolean }
  | {
      readonly kind: 'mutated-update';
      readonly pick: number;
      readonly step2: boolean;
      readonly mutations: readonly Mutation[];
      readonly wrap: boolean;
    }
  | { readonly kind: 'awareness'; readonly pick: number }
  | {
      readonly kind: 'mutated-awareness';
      readonly pick: number;
      readonly mutations: readonly Mutation[];
      readonly wrap: boolean;
    }
  | { readonly kind: 'step1'; readonly pick: number; readonly mutations: readonly Mutation[] }
  | { readonly kind: 'random'; readonly bytes: Uint8Array }
  | { readonly kind: 'control'; readonly which: 'query' | 'hello' | 'token' | 'empty' | 'saved' }
  | { readonly kind: 'text'; readonly text: string }
  | { readonly kind: 'oversize'; readonly extra: number };

export const recipeArb: fc.Arbitrary<FrameRecipe> = fc.oneof(
  {
    arbitrary: fc.record({
      kind: fc.constant('update' as const),
      pick: fc.nat(),
      step2: fc.boolean(),
    }),
    weight: 6,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant('mutated-update' as const),
      pick: fc.nat(),
      step2: fc.boolean(),
      mutations: mutationsArb(3),
      wrap: fc.boolean(),
    }),
    weight: 8,
  },
  { arbitrary: fc.record({ kind: fc.constant('awareness' as const), pick: fc.nat() }), weight: 2 },
  {
    arbitrary: fc.record({
      kind: fc.constant('mutated-awareness' as const),
      pick: fc.nat(),
      mutations: mutationsArb(3),
      wrap: fc.boolean(),
    }),
    weight: 2,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant('step1' as const),
      pick: fc.nat(),
      mutations: fc.oneof(fc.constant([]), mutationsArb(2)),
    }),
    weight: 1,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant('random' as const),
      bytes: fc.uint8Array({ maxLength: 64 }),
    }),
    weight: 3,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant('control' as const),
      which: fc.constantFrom(
        'query' as const,
        'hello' as const,
        'token' as const,
        'empty' as const,
        'saved' as const,
      ),
    }),
    weight: 2,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant('text' as const),
      text: fc.string({ maxLength: 20 }),
    }),
    weight: 1,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant('oversize' as const),
      extra: fc.integer({ min: 1, max: 4096 }),
    }),
    weight: 1,
  },
);

export interface NetPools {
  readonly updates: readonly Uint8Array[];
  readonly stateVectors: readonly Uint8Array[];
  /** Awareness states to announce (each socket announces its own client id). */
  readonly states: readonly Json[];
}

/**
 * The script's client ids for the socket in `slot`: since client ids belong to
 * the connection that introduced them (client-ids.ts), two live sockets write
 * new content under ids of their own, as real clients (random 32-bit ids) do.
 * Slot 0 keeps CLIENT_IDS, the edge values included.
 */
export const slotClientIds = (slot: number): number[] =>
  CLIENT_IDS.map((id) => id + slot * 100_003);

export const netPools = (seed: number, clientIds: readonly number[] = CLIENT_IDS): NetPools => {
  const edits = fc.sample(fc.array(editArb, { minLength: 80, maxLength: 80 }), {
    seed,
    numRuns: 1,
  })[0]!;
  const played = playScript(edits, clientIds);
  const pools: NetPools = {
    updates: [...played.updates],
    stateVectors: [
      ...played.docs.map((doc) => Y.encodeStateVector(doc)),
      Y.encodeStateVector(new Y.Doc()),
    ],
    states: [
      { user: { name: 'ana', color: '#f00' } },
      { cursor: { anchor: 1, head: 4 } },
      null,
      { user: 'b', typing: true },
    ],
  };
  played.destroy();
  return pools;
};

/** An awareness update for one client id (with a clock that only grows). */
export const awarenessUpdate = (clientId: number, clock: number, state: Json): Uint8Array => {
  const e = encoding.createEncoder();
  encoding.writeVarUint(e, 1);
  encoding.writeVarUint(e, clientId);
  encoding.writeVarUint(e, clock);
  encoding.writeVarString(e, JSON.stringify(state));
  return encoding.toUint8Array(e);
};

/** The frame of a recipe; `awarenessId` is the client id the sending socket speaks for. */
export const buildFrame = (
  recipe: FrameRecipe,
  pools: NetPools,
  awarenessId: number,
  clock: number,
): Uint8Array | string => {
  const pickUpdate = (pick: number) => pools.updates[pick % pools.updates.length]!;
  switch (recipe.kind) {
    case 'update':
      return (recipe.step2 ? encodeSyncStep2 : encodeUpdate)(pickUpdate(recipe.pick));
    case 'mutated-update': {
      const wrap = recipe.step2 ? encodeSyncStep2 : encodeUpdate;
      const update = pickUpdate(recipe.pick);
      return recipe.wrap
        ? wrap(mutate(update, recipe.mutations))
        : mutate(wrap(update), recipe.mutations);
    }
    case 'awareness':
      return encodeAwareness(
        awarenessUpdate(awarenessId, clock, pools.states[recipe.pick % pools.states.length]!),
      );
    case 'mutated-awareness': {
      const update = awarenessUpdate(
        awarenessId,
        clock,
        pools.states[recipe.pick % pools.states.length]!,
      );
      return recipe.wrap
        ? encodeAwareness(mutate(update, recipe.mutations))
        : mutate(encodeAwareness(update), recipe.mutations);
    }
    case 'step1': {
      const frame = encodeSyncStep1(pools.stateVectors[recipe.pick % pools.stateVectors.length]!);
      return recipe.mutations.length > 0 ? mutate(frame, recipe.mutations) : frame;
    }
    case 'random':
      return recipe.bytes;
    case 'control':
      switch (recipe.which) {
        case 'query':
          return encodeQueryAwareness();
        case 'hello':
          return encodeHello();
        case 'token':
          return encodeToken('not.a.jwt');
        case 'empty':
          return new Uint8Array(0);
        case 'saved':
          return encodeSaved(1);
      }
      break;
    case 'text':
      return recipe.text;
    case 'oversize':
      return new Uint8Array(NET_MAX_FRAME_BYTES + recipe.extra).fill(7);
  }
  throw new Error('unreachable');
};

export const describeFrame = (frame: Uint8Array | string): string =>
  typeof frame === 'string'
    ? `text ${JSON.stringify(frame)}`
    : frame.length > 512
      ? `${frame.length} bytes starting ${hex(frame.subarray(0, 32))}`
      : hex(frame);

export const tryDecode = (frame: Uint8Array | string): ClientMessage | undefined => {
  if (typeof frame === 'string') return undefined;
  try {
    return decodeClientMessage(frame);
  } catch {
    return undefined;
  }
};

/** A socket of the hostile traffic: counts the node's sync step 2 answers. */
export interface FuzzSocket {
  readonly ws: WebSocket;
  readonly awarenessId: number;
  clock: number;
  step2s: number;
  /** Payload of the last sync step 2 (the full state, when it answered PROBE). */
  lastStep2: Uint8Array | undefined;
  closedWith: Closed | undefined;
}

export let nextAwarenessId = 70_000;

export const openFuzzSocket = async (wsUrl: string, docName: string): Promise<FuzzSocket> => {
  const ws = new WebSocket(`${wsUrl}/${docName}`, { perMessageDeflate: false });
  const socket: FuzzSocket = {
    ws,
    awarenessId: nextAwarenessId++,
    clock: 0,
    step2s: 0,
    lastStep2: undefined,
    closedWith: undefined,
  };
  let greeted = false;
  ws.on('error', () => undefined); // the close code is what counts
  ws.on('message', (data: Buffer) => {
    if (data[0] !== 0) return;
    if (data[1] === 0) greeted = true;
    if (data[1] !== 1) return;
    socket.step2s++;
    const decoder = decoding.createDecoder(data);
    decoding.readVarUint(decoder);
    decoding.readVarUint(decoder);
    socket.lastStep2 = decoding.readVarUint8Array(decoder).slice();
  });
  ws.once('close', (code, reason) => (socket.closedWith = { code, reason: reason.toString() }));
  await waitFor(
    () => greeted || socket.closedWith,
    `the node to greet a socket on ${docName}`,
    5000,
    2,
  );
  if (!greeted)
    throw new Error(`the node closed a fresh socket: ${JSON.stringify(socket.closedWith)}`);
  return socket;
};

/**
 * A document as a client that syncs from scratch sees it. Compare this, not two
 * docs directly: a doc can keep structs pending that a fresh doc applying its
 * full state (which carries the pending part) integrates at once.
 */
export const clientView = (state: Uint8Array) => {
  const doc = new Y.Doc();
  Y.applyUpdate(doc, state);
  const view = docView(doc);
  doc.destroy();
  return view;
};

/** Sync step 1 that the node answers with a step 2: proof that it processed all before. */
export const PROBE = encodeSyncStep1(Y.encodeStateVector(new Y.Doc()));

export const TABLE_CLOSE_CODES = new Set<number>(Object.values(ERRORS).map((e) => e.close));

export interface SerialRun {
  readonly frames: number;
  readonly accepted: number;
  readonly acceptedUpdates: number;
  readonly sockets: number;
  readonly closes: Record<string, number>;
  /** Refusals with a code outside the table or INTERNAL (1011): the frame and the reason. */
  readonly unexpected: string[];
  /** Frames the node accepted but a plain Y.Doc refuses. */
  readonly divergent: string[];
  /**
   * The first time the node's state (its answer to a probe) differed from the
   * reference, with the frames sent since the two last agreed.
   */
  readonly firstDivergence: string | undefined;
  readonly reference: Y.Doc;
  readonly ms: number;
}

/**
 * Hostile frames one at a time, round-robin over `socketCount` sockets, each
 * followed by a probe: an answer means the frame was accepted, a close that it
 * was refused. Updates the node accepted are applied to a reference doc.
 */
export const serialTraffic = async (
  wsUrl: string,
  docName: string,
  seed: number,
  count: number,
  socketCount: number,
): Promise<SerialRun> => {
  const started = Date.now();
  const slotPools = Array.from({ length: socketCount }, (_, slot) =>
    netPools(seed, slotClientIds(slot)),
  );
  const recipes = fc.sample(recipeArb, { seed, numRuns: count });
  const reference = new Y.Doc();
  const sockets: FuzzSocket[] = [];
  for (let i = 0; i < socketCount; i++) sockets.push(await openFuzzSocket(wsUrl, docName));
  let opened = socketCount;
  let accepted = 0;
  let acceptedUpdates = 0;
  const closes: Record<string, number> = {};
  const unexpected: string[] = [];
  const divergent: string[] = [];
  let firstDivergence: string | undefined;
  let sinceAgreement: string[] = [];
  for (const [i, recipe] of recipes.entries()) {
    const slot = i % socketCount;
    const socket = sockets[slot]!;
    const frame = buildFrame(recipe, slotPools[slot]!, socket.awarenessId, ++socket.clock);
    const message = tryDecode(frame);
    const expected = socket.step2s + (message?.type === 'sync-step-1' ? 1 : 0) + 1;
    socket.ws.send(frame);
    socket.ws.send(PROBE);
    try {
      await waitFor(
        () => socket.step2s >= expected || socket.closedWith,
        'an answer or a close',
        CASE_TIMEOUT_MS,
        1,
      );
    } catch {
      throw new Error(
        `frame #${i} (seed ${seed}) got neither an answer nor a close within ${CASE_TIMEOUT_MS} ms: ${describeFrame(frame)}`,
      );
    }
    if (socket.closedWith) {
      const { code, reason } = socket.closedWith;
      sinceAgreement.push(`#${i} refused (${code} ${reason}): ${describeFrame(frame)}`);
      closes[code] = (closes[code] ?? 0) + 1;
      if (!TABLE_CLOSE_CODES.has(code) || code === ERRORS.INTERNAL.close)
        unexpected.push(`${code} ${reason} for frame ${describeFrame(frame)}`);
      sockets[slot] = await openFuzzSocket(wsUrl, docName);
      opened++;
      continue;
    }
    accepted++;
    if (message?.type === 'update' || message?.type === 'sync-step-2') {
      acceptedUpdates++;
      try {
        Y.applyUpdate(reference, message.update);
      } catch (err) {
        divergent.push(`${describeFrame(frame)}: ${String(err)}`);
      }
    }
    sinceAgreement.push(`#${i} accepted: ${describeFrame(frame)}`);
    if (firstDivergence === undefined) {
      const [node, expected] = [
        clientView(socket.lastStep2!),
        clientView(Y.encodeStateAsUpdate(reference)),
      ];
      if (node.snapshot !== expected.snapshot || node.content !== expected.content) {
        firstDivergence = `after frame #${i} (seed ${seed}) the node holds ${JSON.stringify(node)} but the accepted updates make ${JSON.stringify(expected)}; frames since they last agreed:\n${sinceAgreement.join('\n')}`;
      }
      sinceAgreement = [];
    }
    // A token message is checked asynchronously; start over rather than race it.
    if (message?.type === 'token') {
      socket.ws.close();
      sockets[slot] = await openFuzzSocket(wsUrl, docName);
      opened++;
    }
  }
  for (const socket of sockets) socket.ws.close();
  return {
    frames: recipes.length,
    accepted,
    acceptedUpdates,
    sockets: opened,
    closes,
    unexpected,
    divergent,
    firstDivergence,
    reference,
    ms: Date.now() - started,
  };
};

/** What the node must do with a frame, decided without asking it (or unknown). */
export type Verdict =
  | { readonly accept: true; readonly update?: Uint8Array; readonly step1: boolean }
  | { readonly accept: false; readonly close: number }
  | undefined;

export const verdict = (frame: Uint8Array | string, recipe: FrameRecipe): Verdict => {
  if (typeof frame === 'string') return { accept: false, close: ERRORS.TEXT_FRAME.close };
  if (frame.length > NET_MAX_FRAME_BYTES)
    return { accept: false, close: ERRORS.FRAME_TOO_LARGE.close };
  let message: ClientMessage;
  try {
    message = decodeClientMessage(frame);
  } catch {
    return { accept: false, close: ERRORS.INVALID_FRAME.close };
  }
  const valid = !('mutations' in recipe) || recipe.mutations.length === 0;
  switch (message.type) {
    case 'update':
    case 'sync-step-2':
      try {
        Y.decodeUpdate(message.update);
      } catch {
        return { accept: false, close: ERRORS.INVALID_UPDATE.close };
      }
      return valid ? { accept: true, update: message.update, step1: false } : undefined;
    case 'awareness':
      try {
        decodeAwarenessUpdate(message.update);
      } catch {
        return { accept: false, close: ERRORS.INVALID_FRAME.close };
      }
      return valid ? { accept: true, step1: false } : undefined;
    case 'sync-step-1':
      return valid ? { accept: true, step1: true } : undefined;
    case 'query-awareness':
    case 'hello':
      return { accept: true, step1: false };
    case 'token':
      return undefined; // checked asynchronously
    case 'invoke':
      return undefined; // answered by the invoke channel, not by the room
  }
};

export interface ConcurrentRun {
  readonly sockets: number;
  readonly frames: number;
  readonly refusedSockets: number;
  /** Frames sent after a refused one on the same socket (they must have no effect). */
  readonly ignoredFrames: number;
  readonly reference: Y.Doc;
  readonly ms: number;
}

/**
 * Many sockets send their scripts at once, without waiting. Only frames whose
 * fate is known in advance are used, so the document must end up holding exactly
 * the valid updates that precede each socket's first refused frame.
 */
export const concurrentTraffic = async (
  wsUrl: string,
  docName: string,
  seed: number,
  socketCount: number,
): Promise<ConcurrentRun> => {
  const started = Date.now();
  const scripts = fc.sample(fc.array(recipeArb, { minLength: 6, maxLength: 16 }), {
    seed: seed + 1,
    numRuns: socketCount,
  });
  const sockets = await Promise.all(scripts.map(() => openFuzzSocket(wsUrl, docName)));
  const reference = new Y.Doc();
  let frames = 0;
  let ignoredFrames = 0;
  const plans = sockets.map((socket, i) => {
    const planned: Array<{ frame: Uint8Array | string; verdict: NonNullable<Verdict> }> = [];
    const pools = netPools(seed, slotClientIds(i));
    for (const recipe of scripts[i]!) {
      const frame = buildFrame(recipe, pools, socket.awarenessId, ++socket.clock);
      const v = verdict(frame, recipe);
      if (v) planned.push({ frame, verdict: v });
    }
    const firstRefusal = planned.findIndex((p) => !p.verdict.accept);
    const acceptedPart = firstRefusal === -1 ? planned : planned.slice(0, firstRefusal);
    for (const p of acceptedPart)
      if (p.verdict.accept && p.verdict.update) Y.applyUpdate(reference, p.verdict.update);
    frames += planned.length;
    ignoredFrames += firstRefusal === -1 ? 0 : planned.length - firstRefusal - 1;
    return {
      socket,
      planned,
      refusal: firstRefusal === -1 ? undefined : planned[firstRefusal]!,
      step1s: acceptedPart.filter((p) => p.verdict.accept && p.verdict.step1).length,
    };
  });
  // Interleaved, all at once.
  const longest = Math.max(...plans.map((p) => p.planned.length));
  for (let r = 0; r < longest; r++)
    for (const plan of plans)
      if (r < plan.planned.length) plan.socket.ws.send(plan.planned[r]!.frame);
  for (const plan of plans) {
    if (plan.refusal) {
      await waitFor(
        () => plan.socket.closedWith,
        `the node to refuse ${describeFrame(plan.refusal.frame)}`,
        5000,
        2,
      );
      const expected = (plan.refusal.verdict as { close: number }).close;
      assert.equal(
        plan.socket.closedWith!.code,
        expected,
        `close code for ${describeFrame(plan.refusal.frame)} (${plan.socket.closedWith!.reason})`,
      );
    } else {
      plan.socket.ws.send(PROBE);
      await waitFor(
        () => plan.socket.step2s >= plan.step1s + 1 || plan.socket.closedWith,
        'the node to answer a socket that sent only valid frames',
        5000,
        2,
      );
      assert.equal(
        plan.socket.closedWith,
        undefined,
        `a socket that sent only acceptable frames was closed: ${plan.planned.map((p) => describeFrame(p.frame)).join(', ')}`,
      );
      plan.socket.ws.close();
    }
  }
  return {
    sockets: socketCount,
    frames,
    refusedSockets: plans.filter((p) => p.refusal).length,
    ignoredFrames,
    reference,
    ms: Date.now() - started,
  };
};
