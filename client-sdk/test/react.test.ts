/**
 * `@stateweave/client/react` against a real node, rendered into happy-dom:
 * documents open once per name (StrictMode included) and close on unmount,
 * shared types and presence re-render components, status and saved follow the
 * node, and function hooks return typed results.
 */
import { closeDom } from './dom-shim.js';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createElement as h, StrictMode, useState, type ReactNode } from 'react';
import type * as Y from 'yjs';
import { renderToString } from 'react-dom/server';
import { WebSocket } from 'ws';
import type { StateweaveClient, WebSocketConstructor } from '@stateweave/client';
import {
  createFunctionHooks,
  StateweaveProvider,
  useArray,
  useDoc,
  useMap,
  useOthers,
  usePresence,
  useSaved,
  useStatus,
  useText,
} from '@stateweave/client/react';
import { startNode, type TestNode } from '../../server/dist/test/helpers/node.js';
import { FIXTURE_FUNCTIONS } from '../../server/dist/test/helpers/functions.js';
import { sdkClient, sleep, textOf } from './helpers.js';
import { eventually, render } from './react-render.js';

/** ws, counting the sockets a client opens. */
const countingWebSocket = (): { WebSocket: WebSocketConstructor; opened: () => number } => {
  let opened = 0;
  class Counting extends WebSocket {
    constructor(url: string) {
      super(url);
      opened++;
    }
  }
  return { WebSocket: Counting, opened: () => opened };
};

const withClient = (client: StateweaveClient, child: ReactNode): ReactNode =>
  h(StateweaveProvider, { client }, child);

const TextView = ({ name }: { name: string }): ReactNode => {
  const handle = useDoc(name);
  const text = useText(handle.doc.getText('text'));
  const status = useStatus(handle);
  const { saved, pending } = useSaved(handle);
  return h(
    'div',
    {},
    h('p', { 'data-testid': 'text' }, text),
    h('p', { 'data-testid': 'status' }, status),
    h('p', { 'data-testid': 'saved' }, saved ? 'saved' : `pending ${pending}`),
  );
};

describe('React bindings (real node)', () => {
  let node: TestNode;
  const clients: StateweaveClient[] = [];
  const client = (ws?: WebSocketConstructor): StateweaveClient => {
    const made = sdkClient({ url: node.wsUrl, ...(ws ? { WebSocket: ws } : {}) });
    clients.push(made);
    return made;
  };
  before(async () => {
    node = await startNode({ functionsDir: FIXTURE_FUNCTIONS });
  });
  after(async () => {
    for (const c of clients) await c.destroy();
    await node.close();
    await closeDom();
  });

  it('renders the shared text, its status and "saved", and follows remote edits', async () => {
    const app = client();
    const other = client();
    const view = render(withClient(app, h(TextView, { name: 'react-text' })));
    await eventually(() => view.text('status') === 'connected', 'connected');
    await eventually(() => view.text('saved') === 'saved', 'saved after the first sync');

    const remote = other.open('react-text');
    await remote.synced;
    remote.doc.getText('text').insert(0, 'from another client');
    await eventually(() => view.text('text') === 'from another client', 'the remote edit');

    const local = app.documents.get('react-text')!;
    local.doc.getText('text').insert(0, '> ');
    assert.equal(local.pending > 0, true, 'a local edit is pending until the node acks it');
    await eventually(() => view.text('saved') === 'saved', 'saved after the local edit');
    await eventually(() => textOf(remote) === '> from another client', 'the edit reaching B');
    view.unmount();
  });

  it('useSaved reports each saved event once: savedAt, saves and onSaved, under StrictMode', async () => {
    const app = client();
    const events: number[] = [];
    const SavedView = (): ReactNode => {
      const handle = useDoc('react-saved');
      const { saves, savedAt, pending } = useSaved(handle, { onSaved: (at) => events.push(at) });
      return h(
        'p',
        { 'data-testid': 'saves' },
        `${saves} ${savedAt === undefined ? '-' : 'at'} ${pending}`,
      );
    };
    const view = render(h(StrictMode, {}, withClient(app, h(SavedView))));
    await eventually(() => app.documents.get('react-saved')?.isSynced === true, 'synced');
    const handle = app.documents.get('react-saved')!;
    const before = events.length;
    const started = Date.now();
    for (const word of ['one', ' two']) {
      const seen = events.length;
      handle.doc.getText('text').insert(handle.doc.getText('text').length, word);
      await eventually(() => events.length === seen + 1, `onSaved after "${word}"`);
    }
    await sleep(50); // a duplicate call (StrictMode, a re-render) would land by now
    assert.equal(events.length, before + 2, 'one call per saved event');
    assert.equal(events.at(-1)! >= started, true, 'savedAt is the time of the event');
    assert.equal(view.text('saves'), `${events.length} at 0`);
    view.unmount();
  });

  it('opens one socket under StrictMode, keeps it across the double mount, closes on unmount', async () => {
    const sockets = countingWebSocket();
    const app = client(sockets.WebSocket);
    const tree = (): ReactNode =>
      h(StrictMode, {}, withClient(app, [h(TextView, { key: 'a', name: 'react-strict' })]));
    const view = render(tree());
    await eventually(() => view.text('status') === 'connected', 'connected');
    const handle = app.documents.get('react-strict')!;
    handle.doc.getText('text').insert(0, 'typed once');
    await sleep(50); // past the registry's grace period: a double mount would have closed it
    assert.equal(handle.closed, false, 'the double mount must not close the handle');
    assert.equal(sockets.opened(), 1, 'one socket for the document');
    assert.equal(app.documents.size, 1);
    assert.equal(view.text('text'), 'typed once', 'no duplicated state');
    await eventually(() => view.text('saved') === 'saved', 'saved');

    view.unmount();
    await eventually(() => handle.closed && app.documents.size === 0, 'the handle closed');

    // Mounting again opens a fresh handle, which loads the text from the node.
    const again = render(tree());
    await eventually(() => again.text('text') === 'typed once', 'the text after re-mount');
    assert.notEqual(app.documents.get('react-strict'), handle, 'a new handle');
    assert.equal(sockets.opened(), 2, 'one more socket for the re-mount');
    again.unmount();
  });

  it('shares one handle between components and leaves app-opened handles open', async () => {
    const app = client();
    const mine = app.open('react-shared');
    const view = render(
      withClient(app, [
        h(TextView, { key: 'a', name: 'react-shared' }),
        h(TextView, { key: 'b', name: 'react-shared' }),
      ]),
    );
    await eventually(() => view.text('status') === 'connected', 'connected');
    assert.equal(app.documents.size, 1);
    view.unmount();
    await sleep(50);
    assert.equal(mine.closed, false, 'the app opened it, the app closes it');
  });

  it('keeps map and array snapshots stable until the type changes', async () => {
    const app = client();
    const seen: Array<{ map: ReadonlyMap<string, unknown>; list: readonly unknown[] }> = [];
    let bump: () => void = () => undefined;
    const Lists = (): ReactNode => {
      const handle = useDoc('react-lists');
      const map = useMap(handle.doc.getMap<unknown>('m'));
      const list = useArray(handle.doc.getArray<unknown>('a'));
      const [n, setN] = useState(0);
      bump = () => setN((x) => x + 1);
      seen.push({ map, list });
      return h('p', { 'data-testid': 'lists' }, `${n}:${map.size}:${list.length}`);
    };
    const view = render(withClient(app, h(Lists)));
    await eventually(() => view.text('lists') === '0:0:0', 'first render');
    const first = seen.at(-1)!;
    bump();
    await eventually(() => view.text('lists') === '1:0:0', 'a re-render for local state');
    assert.equal(seen.at(-1)!.map, first.map, 'same map snapshot without a change');
    assert.equal(seen.at(-1)!.list, first.list, 'same array snapshot without a change');

    const doc = app.documents.get('react-lists')!.doc;
    doc.getMap<unknown>('m').set('k', 1);
    await eventually(() => view.text('lists') === '1:1:0', 'the map change');
    assert.notEqual(seen.at(-1)!.map, first.map, 'a new map snapshot after a change');
    assert.equal(seen.at(-1)!.list, first.list, 'the array did not change');
    assert.equal(seen.at(-1)!.map.get('k'), 1);
    (doc.getArray<unknown>('a') as Y.Array<unknown>).push(['x']);
    await eventually(() => view.text('lists') === '1:1:1', 'the array change');
    assert.deepEqual(seen.at(-1)!.list, ['x']);
    view.unmount();
  });

  it('shows the others present, and drops whoever leaves', async () => {
    type User = { name: string };
    const Person = ({ name }: { name: string }): ReactNode => {
      const handle = useDoc('react-presence');
      const { self, update } = usePresence<User>(handle);
      const others = useOthers<User>(handle);
      if (self?.name !== name) update({ name });
      return h('p', { 'data-testid': 'others' }, others.map((o) => o.state.name).join(','));
    };
    const a = render(withClient(client(), h(Person, { name: 'Ada' })));
    const b = render(withClient(client(), h(Person, { name: 'Bob' })));
    await eventually(() => a.text('others') === 'Bob', 'Ada sees Bob');
    await eventually(() => b.text('others') === 'Ada', 'Bob sees Ada');
    b.unmount();
    await eventually(() => a.text('others') === '', 'Bob gone after his unmount', 10_000);
    a.unmount();
  });

  it('calls functions with typed useInvoke and useQuery, re-querying when the input changes', async () => {
    type Fns = {
      increment: { input: { counter: string }; output: { n: number } };
      read: { input: { counter: string }; output: { n: number } };
    };
    const { useInvoke, useQuery } = createFunctionHooks<Fns>();
    let clickIncrement: () => Promise<{ n: number }> = () => Promise.reject(new Error('unset'));
    const Counter = ({ counter }: { counter: string }): ReactNode => {
      const inc = useInvoke('increment');
      const read = useQuery('read', { counter });
      clickIncrement = () => inc.invoke({ counter: 'react-a' });
      return h(
        'p',
        { 'data-testid': 'counter' },
        `${counter} ${inc.status}:${inc.data?.n ?? '-'} ${read.status}:${read.data?.n ?? '-'}`,
      );
    };
    const app = client();
    const view = render(withClient(app, h(Counter, { counter: 'react-a' })));
    await eventually(() => view.text('counter') === 'react-a idle:- done:0', 'the first query');
    assert.deepEqual(await clickIncrement(), { n: 1 });
    await eventually(
      () => view.text('counter')?.startsWith('react-a done:1') === true,
      'the invoke',
    );
    view.rerender(withClient(app, h(Counter, { counter: 'react-b' })));
    await eventually(
      () => view.text('counter') === 'react-b done:1 done:0',
      'the query for react-b',
    );
    view.rerender(withClient(app, h(Counter, { counter: 'react-a' })));
    await eventually(() => view.text('counter') === 'react-a done:1 done:1', 'react-a read again');
    view.unmount();
  });
  it('renders on the server without throwing, and a client destroyed after it leaves nothing open', async () => {
    const sockets = countingWebSocket();
    const app = sdkClient({ url: node.wsUrl, WebSocket: sockets.WebSocket });
    const Page = (): ReactNode => {
      const handle = useDoc('react-ssr');
      const text = useText(handle.doc.getText('text'));
      const { saved } = useSaved(handle);
      const others = useOthers(handle);
      return h('p', {}, `[${text}] ${useStatus(handle)} saved:${saved} others:${others.length}`);
    };
    // What a server render gets: the first state, before any sync.
    const html = renderToString(withClient(app, h(Page)));
    assert.equal(html, '<p>[] connecting saved:false others:0</p>');
    await app.destroy(); // a server creates a client per request and destroys it after rendering
    await sleep(100);
    assert.equal(app.documents.size, 0);
    assert.equal(sockets.opened(), 0, 'no socket outlives the server render');
  });
});
