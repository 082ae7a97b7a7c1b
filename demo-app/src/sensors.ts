/**
 * Streaming join: two simulated sensors post readings through `joinSensors`,
 * which pairs readings of `a` and `b` within a time window in `sensors/<space>`.
 * The list of pairs observes that document.
 */
import type { DocHandle } from '@stateweave/client';
import { formatMs, h } from './dom.js';
import type { Session } from './session.js';

interface Reading {
  id: string;
  sensor: 'a' | 'b';
  t: number;
  value: number;
}
interface Pair {
  a: string;
  b: string;
  dt: number;
  sum: number;
}

const WINDOW_MS = 1000;

export const createSensorsView = (
  session: Session,
  track: (handle: DocHandle) => void,
): HTMLElement => {
  const stream = session.space;
  const handle = session.client.open(`sensors/${stream}`);
  track(handle);
  const readings = handle.doc.getMap<Reading>('readings');
  const pairs = handle.doc.getMap<Pair>('pairs');
  const counter = { a: 0, b: 0 };
  const tag = Math.random().toString(36).slice(2, 6);

  const pairList = h('tbody');
  const pairCount = h('span', { class: 'big', 'data-testid': 'pair-count' }, '0');
  const readingCount = h('span', { class: 'big', 'data-testid': 'reading-count' }, '0');
  const lastResult = h(
    'p',
    { class: 'muted', 'data-testid': 'sensor-result' },
    'No readings sent yet.',
  );

  const render = (): void => {
    pairCount.textContent = String(pairs.size);
    readingCount.textContent = String(readings.size);
    const all = [...pairs.entries()]
      .map(([key, pair]) => ({ key, pair, t: readings.get(pair.b)?.t ?? 0 }))
      .sort((x, y) => y.t - x.t)
      .slice(0, 20);
    pairList.replaceChildren(
      ...all.map(({ key, pair, t }) =>
        h(
          'tr',
          { 'data-testid': 'pair', 'data-key': key },
          h('td', {}, h('code', {}, pair.a)),
          h('td', {}, h('code', {}, pair.b)),
          h('td', { class: 'num' }, `${pair.dt} ms`),
          h('td', { class: 'num' }, pair.sum.toFixed(1)),
          h('td', { class: 'muted' }, t ? new Date(t).toLocaleTimeString() : ''),
        ),
      ),
    );
  };
  handle.doc.on('update', render);
  render();

  const send = (sensor: 'a' | 'b'): void => {
    counter[sensor] += 1;
    const reading = {
      stream,
      sensor,
      id: `${sensor}${counter[sensor]}-${tag}`,
      t: Date.now(),
      value: Math.round(Math.random() * 1000) / 10,
      windowMs: WINDOW_MS,
    };
    const started = performance.now();
    session.client.invoke('joinSensors', reading).then(
      (result) => {
        lastResult.textContent = `${reading.id} = ${reading.value} → ${result.made} new pair(s) · ${formatMs(performance.now() - started)}`;
      },
      (err: unknown) => {
        lastResult.textContent = `${reading.id} failed: ${(err as Error).message}`;
      },
    );
  };

  const sensorCard = (sensor: 'a' | 'b', label: string): HTMLElement => {
    let timer: ReturnType<typeof setInterval> | undefined;
    const toggle = h('button', { class: 'btn', 'data-testid': `auto-${sensor}` }, 'Start stream');
    toggle.addEventListener('click', () => {
      if (timer === undefined) {
        timer = setInterval(() => send(sensor), 600 + Math.random() * 600);
        toggle.textContent = 'Stop stream';
        toggle.classList.add('on');
      } else {
        clearInterval(timer);
        timer = undefined;
        toggle.textContent = 'Start stream';
        toggle.classList.remove('on');
      }
    });
    const once = h(
      'button',
      { class: 'btn primary', 'data-testid': `send-${sensor}` },
      'Send reading',
    );
    once.addEventListener('click', () => send(sensor));
    return h(
      'div',
      { class: 'card sensor' },
      h('h2', {}, label),
      h('p', { class: 'muted' }, `Posts { sensor: "${sensor}", t, value } to joinSensors.`),
      h('div', { class: 'row' }, once, toggle),
    );
  };

  return h(
    'section',
    { class: 'view', 'data-view': 'sensors' },
    h(
      'div',
      { class: 'view-head' },
      h(
        'div',
        {},
        h('h1', {}, 'Sensors'),
        h(
          'p',
          { class: 'sub' },
          `Readings of sensor A and B are joined when their timestamps are within ${WINDOW_MS} ms (document sensors/${stream}).`,
        ),
      ),
    ),
    h(
      'div',
      { class: 'grid-3' },
      sensorCard('a', 'Sensor A'),
      sensorCard('b', 'Sensor B'),
      h(
        'div',
        { class: 'card' },
        h('h2', {}, 'Stream'),
        h(
          'div',
          { class: 'stats' },
          h('div', {}, readingCount, h('small', {}, 'readings')),
          h('div', {}, pairCount, h('small', {}, 'joined pairs')),
        ),
        lastResult,
      ),
    ),
    h(
      'div',
      { class: 'card' },
      h('h2', {}, 'Joined pairs (latest 20)'),
      h(
        'table',
        { class: 'table' },
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            h('th', {}, 'Reading A'),
            h('th', {}, 'Reading B'),
            h('th', { class: 'num' }, 'Δt'),
            h('th', { class: 'num' }, 'Sum'),
            h('th', {}, 'Time'),
          ),
        ),
        pairList,
      ),
    ),
  );
};
