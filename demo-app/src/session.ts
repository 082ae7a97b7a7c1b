/**
 * Who and where this tab is: the node to talk to, the "space" (a prefix for every
 * document name, so several demos can share one node), the visitor id and the
 * display name, and the token on a node with auth. Set by URL parameters
 * (`?space=…&name=…&node=ws://…&token=…`), else defaults.
 */
import { createClient, type StateweaveClient } from '@stateweave/client';
import { colorAt, colorIndexFor } from './colors.js';
import type { DemoFunctions } from './functions.js';

export interface Session {
  readonly client: StateweaveClient<DemoFunctions>;
  readonly space: string;
  readonly visitor: string;
  readonly name: string;
  /** The colour this tab starts with (the editor moves it if someone present has it). */
  readonly color: string;
}

const NAMES = [
  'Ada',
  'Grace',
  'Alan',
  'Barbara',
  'Edsger',
  'Margaret',
  'Donald',
  'Frances',
  'Ken',
  'Radia',
];

const randomId = (): string => crypto.randomUUID().replaceAll('-', '').slice(0, 12);
const pick = <T>(items: readonly T[], seed: string): T => {
  let h = 0;
  for (const ch of seed) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
  return items[h % items.length]!;
};

/** A stable id per browser profile (a reload is the same visitor). */
const visitorId = (): string => {
  const key = 'stateweave-demo.visitor';
  try {
    const known = localStorage.getItem(key);
    if (known) return known;
    const id = `v-${randomId()}`;
    localStorage.setItem(key, id);
    return id;
  } catch {
    return `v-${randomId()}`; // storage disabled: a visitor per page load
  }
};

const cleanSegment = (value: string | null, fallback: string): string => {
  const cleaned = (value ?? '').replace(/[^A-Za-z0-9._~:@=+-]/g, '').slice(0, 64);
  return cleaned === '' ? fallback : cleaned;
};

export const createSession = (): Session => {
  const params = new URLSearchParams(location.search);
  const node =
    params.get('node') ?? `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}`;
  const visitor = visitorId();
  const name = (params.get('name') ?? pick(NAMES, visitor)).slice(0, 32);
  const token = params.get('token') ?? undefined;
  return {
    client: createClient<DemoFunctions>({ url: node, ...(token ? { token } : {}) }),
    space: cleanSegment(params.get('space'), 'demo'),
    visitor,
    name,
    color: colorAt(colorIndexFor(visitor)),
  };
};
