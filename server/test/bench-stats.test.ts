/**
 * The bench's statistics (server/bench/stats.ts): what `npm run bench` reports as
 * medians, 95% intervals of a ratio, and verdicts on a target. Small samples whose
 * bootstrap distribution is known exactly, so a wrong quantile, a resample that
 * does not resample, or a swapped ratio fails here instead of in a README table.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  BOOTSTRAP_RESAMPLES,
  median,
  quantile,
  ratioInterval,
  targetVerdict,
} from '../bench/stats.js';
import { renderMarkdown } from '../bench/render.js';
import { summarizeFanout, type BenchResults, type FanOutRun } from '../bench/results.js';

describe('bench statistics: median and quantile', () => {
  it('takes the middle value, or the mean of the two middle ones', () => {
    assert.equal(median([3, 1, 2]), 2);
    assert.equal(median([4, 1, 3, 2]), 2.5);
    assert.equal(median([7]), 7);
  });

  it('ignores what a failed run leaves (NaN, ±Infinity) and is NaN with nothing left', () => {
    assert.equal(median([5, NaN, 1, Infinity, 3, -Infinity]), 3);
    assert.ok(Number.isNaN(median([])));
    assert.ok(Number.isNaN(median([NaN])));
  });

  it('does not reorder the caller’s array', () => {
    const runs = [3, 1, 2];
    median(runs);
    assert.deepEqual(runs, [3, 1, 2]);
  });

  it('gives the nearest-rank quantile of a sorted array', () => {
    const hundred = Array.from({ length: 100 }, (_, i) => i + 1);
    assert.equal(quantile(hundred, 0.5), 50);
    assert.equal(quantile(hundred, 0.99), 99);
    assert.equal(quantile(hundred, 1), 100);
    assert.equal(quantile(hundred, 0), 1);
    assert.equal(quantile([42], 0.99), 42);
    assert.ok(Number.isNaN(quantile([], 0.5)));
  });
});

describe('bench statistics: bootstrap interval of a ratio of medians', () => {
  it('needs three finite runs on each side', () => {
    assert.equal(ratioInterval([1, 2], [1, 2, 3]), undefined);
    assert.equal(ratioInterval([1, 2, 3], [1, NaN, 3]), undefined);
    assert.equal(ratioInterval(undefined, [1, 2, 3]), undefined);
  });

  it('is the ratio itself when neither side varies, a ÷ b and not b ÷ a', () => {
    assert.deepEqual(ratioInterval([10, 10, 10], [5, 5, 5]), { lo: 2, hi: 2 });
    assert.deepEqual(ratioInterval([5, 5, 5], [10, 10, 10]), { lo: 0.5, hi: 0.5 });
  });

  it('spans the 2.5th to 97.5th percentile of the resampled medians', () => {
    // The median of 3 draws from {1, 2, 3} is 1 or 3 with probability 7/27 each
    // (26 %): both ends are well inside the 95 % interval, the middle 2 is not all
    // of it. A bootstrap that does not resample gives 2–2; quantiles of 30/70 % too.
    assert.deepEqual(ratioInterval([1, 2, 3], [1, 1, 1]), { lo: 1, hi: 3 });
    assert.deepEqual(ratioInterval([1, 1, 1], [1, 2, 3]), { lo: 1 / 3, hi: 1 });
  });

  it('keeps an outlier run only when the resampled median lands on it often enough', () => {
    // One outlier in five runs is the median of a resample when three or more of the
    // five draws are it: 5.8 % of resamples, more than the 2.5 % tail, so it is the
    // upper bound. One in nine needs five of nine draws: 0.1 %, inside the tail.
    assert.deepEqual(ratioInterval([1, 1, 1, 1, 100], [1, 1, 1, 1, 1]), { lo: 1, hi: 100 });
    assert.deepEqual(ratioInterval([1, 1, 1, 1, 1, 1, 1, 1, 100], [1, 1, 1, 1, 1, 1, 1, 1, 1]), {
      lo: 1,
      hi: 1,
    });
  });

  it('holds the ratio of the medians, and is the same on every call (fixed seed)', () => {
    const ours = [2.1, 3.4, 2.8, 5.9, 2.5, 3.0];
    const peer = [4.2, 3.9, 6.1, 4.8, 12.5, 4.4];
    const ci = ratioInterval(ours, peer);
    assert.ok(ci);
    const point = median(ours) / median(peer);
    assert.ok(ci.lo < point && point < ci.hi, `${point} in ${ci.lo}–${ci.hi}`);
    assert.ok(ci.lo >= Math.min(...ours) / Math.max(...peer));
    assert.ok(ci.hi <= Math.max(...ours) / Math.min(...peer));
    assert.deepEqual(ratioInterval(ours, peer), ci);
    assert.equal(BOOTSTRAP_RESAMPLES, 2000);
  });
});

describe('bench statistics: verdict on a target', () => {
  it('is met when the whole interval is at or below the bound', () => {
    assert.equal(targetVerdict([1, 1, 1], [2, 2, 2], 0.8), 'met');
    assert.equal(targetVerdict([4, 4, 4], [5, 5, 5], 0.8), 'met'); // exactly 0.8
  });

  it('is missed when the whole interval is above the bound', () => {
    assert.equal(targetVerdict([2, 2, 2], [1, 1, 1], 0.8), 'missed');
    assert.equal(targetVerdict([2, 3, 4], [2, 2, 2], 0.8), 'missed'); // 1–2
  });

  it('is undecided when the interval straddles the bound', () => {
    assert.equal(targetVerdict([1, 2, 3], [2, 2, 2], 0.8), 'undecided'); // 0.5–1.5
  });

  it('turns round for a figure where higher is better', () => {
    assert.equal(targetVerdict([3, 3, 3], [1, 1, 1], 1.5, true), 'met');
    assert.equal(targetVerdict([1, 1, 1], [1, 1, 1], 1.5, true), 'missed');
    assert.equal(targetVerdict([1, 2, 3], [1, 1, 1], 1.5, true), 'undecided');
  });

  it('says nothing without runs enough', () => {
    assert.equal(targetVerdict([1, 1], [2, 2, 2], 0.8), '–');
  });
});

describe('bench Markdown: the summary table', () => {
  const run = (p99: number): FanOutRun => ({
    p50: p99 / 2,
    p99,
    max: p99 * 2,
    sent: 1000,
    delivered: 4000,
    offeredPerSec: 500,
    achievedPerSec: 500,
    lostEdits: 0,
    lostDeliveries: 0,
    rssKb: 51_200,
    peakRssKb: 60_000,
    cpuMsPer1k: 40,
    stealMs: 3,
  });
  const runs = {
    'ours-memory': [run(2), run(3), run(4)],
    reference: [run(10), run(10), run(10)],
  };
  const results: BenchResults = {
    startedAt: '2026-12-05T19:00:00.000Z',
    machine: { cpus: 2, cpu: 'test CPU', node: 'v20', platform: 'linux' },
    config: {
      RUNS: 3,
      SECONDS: 5,
      CLIENTS: 'light',
      SCENARIOS: [1, 9],
      LARGE_EDITS: 0,
      PIN: false,
      QUICK: false,
    },
    versions: {
      '@y/websocket-server': '0.1.1',
      '@hocuspocus/server': '4.7.0',
      '@hocuspocus/provider': '4.7.0',
      'y-websocket': '3.1.0',
      yjs: '13.6.33',
    },
    scenarios: {
      1: {
        kind: 'fanout',
        title: 'collaboration: 10 docs',
        runs,
        summary: summarizeFanout(runs),
      },
      9: {
        kind: 'extras',
        title: 'presence: one document',
        markdown: 'presence table',
        summaryRow: '| 9. presence — CPU | 10.0 % | | 20.0 % | | |',
      },
      10: { kind: 'failed', error: 'the peers are not installed' },
    },
  };
  const md = renderMarkdown(results);

  it('has one row per scenario with figures, and never an undefined cell', () => {
    assert.match(
      md,
      /\| 1\. collaboration — fan-out p50 \/ p99 \| 1\.5 \/ 3\.0 ms \| {2}\| 5\.0 \/ 10\.0 ms \|/,
    );
    assert.match(md, /\| 9\. presence — CPU \| 10\.0 % \|/);
    assert.doesNotMatch(md, /undefined/);
    assert.match(md, /### 10\. failed: the peers are not installed/);
  });

  it('gives the ratio to each peer with its interval and the verdict', () => {
    assert.match(md, /\| 0\.30× \(0\.20–0\.40\) \|/);
    assert.match(md, /Stateweave \(memory\) met vs ref/);
  });
});
