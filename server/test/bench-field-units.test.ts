/**
 * The field's units table of `npm run bench` (server/bench/field-units.ts): each
 * unit computed from the scenario that measures it, with the goal's verdict.
 * Synthetic results whose figures are known, so a wrong divisor (receivers, not
 * clients), a swapped ratio or a verdict that cannot miss fails here instead of in
 * a README table.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fieldUnits, renderFieldUnits, type StartupData } from '../bench/field-units.js';
import type { PresenceData, PresenceRun } from '../bench/presence.js';
import {
  summarizeFanout,
  type BenchResults,
  type FanOutRun,
  type FanOutScenario,
  type RunsBySystem,
} from '../bench/results.js';

const fanOutRun = (cpuMsPer1k: number): FanOutRun => ({
  p50: 1,
  p99: 5,
  max: 9,
  sent: 1000,
  delivered: 49_000,
  offeredPerSec: 100,
  achievedPerSec: 100,
  lostEdits: 0,
  lostDeliveries: 0,
  rssKb: 50_000,
  peakRssKb: 60_000,
  cpuMsPer1k,
  stealMs: 0,
});

const fanOut = (perDoc: number, cpu: Record<string, number[]>, withLoad = true): FanOutScenario => {
  const runs: RunsBySystem<FanOutRun> = Object.fromEntries(
    Object.entries(cpu).map(([name, xs]) => [name, xs.map(fanOutRun)]),
  );
  return {
    kind: 'fanout',
    title: 't',
    ...(withLoad ? { load: { docs: 1, perDoc, rate: 2 } } : {}),
    runs,
    summary: summarizeFanout(runs),
  };
};

const results = (scenarios: BenchResults['scenarios']): BenchResults => ({
  startedAt: '2026-12-06T00:00:00Z',
  machine: { cpus: 2, cpu: 'test', node: 'v20', platform: 'linux' },
  config: {
    RUNS: 3,
    SECONDS: 5,
    CLIENTS: 'light',
    SCENARIOS: [],
    LARGE_EDITS: 0,
    PIN: true,
    QUICK: false,
  },
  versions: {},
  scenarios,
});

const row = (r: BenchResults, start: string) => {
  const found = fieldUnits(r).find((u) => u.unit.startsWith(start));
  assert.ok(found, `a row starting "${start}"`);
  return found;
};

describe("bench: the field's units table", () => {
  it('divides CPU per edit by the receivers, and misses 0.8x the better peer at 1.1x', () => {
    const r = results({
      '2': fanOut(50, {
        'ours-memory': [1078, 1078, 1078],
        reference: [980, 980, 980],
        hocuspocus: [2000, 2000, 2000],
      }),
    });
    const u = row(r, 'CPU per delivered update per observer');
    assert.equal(u.cells['ours-memory'], '22.0 (22.0–22.0)'); // 1,078 µs per edit ÷ 49
    assert.equal(u.cells.reference, '20.0 (20.0–20.0)');
    assert.equal(u.verdict, 'missed');
    assert.match(u.note ?? '', /^1\.10× @y\/websocket-server/);
  });

  it('gives the large room (scenario 13) its own row, divided by its 499 receivers', () => {
    const r = results({
      '2': fanOut(50, { 'ours-memory': [980, 980, 980], reference: [980, 980, 980] }),
      '13': fanOut(500, { 'ours-memory': [998, 998, 998], reference: [9980, 9980, 9980] }),
    });
    const rows = fieldUnits(r).filter((u) => u.unit.startsWith('CPU per delivered update'));
    assert.deepEqual(
      rows.map((u) => u.unit.match(/scenario (\d+)/)?.[1]),
      ['2', '13'],
    );
    assert.equal(rows[1]!.cells['ours-memory'], '2.0 (2.0–2.0)'); // 998 µs per edit ÷ 499
    assert.equal(rows[1]!.cells.reference, '20.0 (20.0–20.0)');
    assert.equal(rows[1]!.verdict, 'met');
    assert.equal(rows[0]!.verdict, 'missed');
  });

  it('meets it at half the better peer, and has no verdict with too few runs', () => {
    const half = results({
      '2': fanOut(50, { 'ours-memory': [490, 500, 510], reference: [980, 1000, 1020] }),
    });
    assert.equal(row(half, 'CPU per delivered update').verdict, 'met');
    const few = results({ '2': fanOut(50, { 'ours-memory': [490], reference: [980] }) });
    assert.equal(row(few, 'CPU per delivered update').verdict, '–');
  });

  it('skips the per-observer row for results saved without the load', () => {
    const r = results({ '2': fanOut(50, { 'ours-memory': [1], reference: [1] }, false) });
    assert.equal(
      fieldUnits(r).some((u) => u.unit.startsWith('CPU per delivered')),
      false,
    );
  });

  it('judges LevelDB against the reference in memory', () => {
    const r = results({
      '3': fanOut(2, {
        'ours-memory': [70, 71, 72],
        'ours-leveldb': [100, 101, 102],
        reference: [74, 75, 76],
      }),
    });
    const u = row(r, 'CPU per 1,000 edits');
    assert.equal(u.verdict, 'missed');
    assert.equal(u.cells['ours-leveldb'], '101 (100–102)');
    assert.match(u.note ?? '', /^1\.35×/);
  });

  it('counts presence per update owed to the other clients, and the CPU goal at 500 only', () => {
    const run = (cpuPct: number): PresenceRun => ({
      clients: 500,
      sentPerSec: 500,
      cpuPct,
      framesInPerSec: 5000,
    });
    const data = (clients: number): PresenceData => ({
      runs: {
        [clients]: {
          'ours-memory': [run(12), run(12.4), run(13)],
          reference: [run(99), run(99.7), run(100)],
        },
      },
      summary: {},
    });
    const r = results({ '9': { kind: 'extras', title: 'p', markdown: '', data: data(500) } });
    const perObserver = row(r, 'CPU per presence update per observer');
    // 12.4 % of a core = 124,000 µs/s over 500 × 499 updates owed a second
    assert.equal(perObserver.cells['ours-memory'], '0.50 (0.48–0.52)');
    assert.equal(perObserver.cells.reference, '4.00 (3.97–4.01)'); // 997,000 ÷ 249,500
    assert.equal(perObserver.verdict, 'met');
    assert.equal(row(r, '500 clients in one document').verdict, 'met');
    const small = results({ '9': { kind: 'extras', title: 'p', markdown: '', data: data(100) } });
    const cpu = row(small, '100 clients in one document');
    assert.equal(cpu.verdict, '–');
    assert.match(cpu.note ?? '', /500 clients/);
  });

  it('needs every start to meet both goals, and 10,000 documents for a verdict', () => {
    const startup = (docs: number, runs: StartupData['runs']) =>
      results({
        '12': { kind: 'extras', title: 's', markdown: '', data: { docs, runs } },
      });
    const ok = { readyMs: 450, openP99: 4 };
    assert.equal(row(startup(10_000, [ok, ok]), 'node start').verdict, 'met');
    assert.equal(
      row(startup(10_000, [ok, { readyMs: 450, openP99: 9 }]), 'node start').verdict,
      'undecided',
    );
    assert.equal(
      row(startup(10_000, [{ readyMs: 1200, openP99: 4 }]), 'node start').verdict,
      'missed',
    );
    assert.equal(row(startup(1000, [ok]), 'node start').verdict, '–');
  });

  it('renders nothing when none of its scenarios ran, and a table when one did', () => {
    assert.deepEqual(renderFieldUnits(results({})), []);
    const md = renderFieldUnits(
      results({ '3': fanOut(2, { 'ours-leveldb': [100], reference: [75] }) }),
    );
    assert.equal(md[0], "## The field's units (issue 18)");
    assert.ok(md.some((l) => l.startsWith('| CPU per 1,000 edits')));
  });
});
