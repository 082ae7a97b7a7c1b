/**
 * Both sensor streams over time (uPlot): a line with points per sensor, and
 * every joined pair marked by a dashed segment between its two readings with a
 * ring on each. Shows the latest readings only, so a long stream stays legible.
 */
import { useMemo, useRef } from 'react';
import type uPlot from 'uplot';
import { Chart } from './chart.js';
import type { Pair, Reading } from './functions.js';

/** The newest readings drawn. */
const SHOWN = 120;
export const SENSOR_COLORS = { a: '#2563eb', b: '#d97706', pair: '#111827' } as const;

interface Joined {
  readonly a: Reading;
  readonly b: Reading;
}

const markPairs = (joined: { current: readonly Joined[] }) => (u: uPlot) => {
  const ctx = u.ctx;
  const ring = 6 * devicePixelRatio;
  ctx.save();
  ctx.strokeStyle = SENSOR_COLORS.pair;
  ctx.lineWidth = 1.5 * devicePixelRatio;
  for (const { a, b } of joined.current) {
    const points = [a, b].map(
      (r) => [u.valToPos(r.t / 1000, 'x', true), u.valToPos(r.value, 'y', true)] as const,
    );
    ctx.setLineDash([4 * devicePixelRatio, 3 * devicePixelRatio]);
    ctx.beginPath();
    ctx.moveTo(points[0]![0], points[0]![1]);
    ctx.lineTo(points[1]![0], points[1]![1]);
    ctx.stroke();
    ctx.setLineDash([]);
    for (const [x, y] of points) {
      ctx.beginPath();
      ctx.arc(x, y, ring, 0, 2 * Math.PI);
      ctx.stroke();
    }
  }
  ctx.restore();
};

export const SensorsChart = ({
  readings,
  pairs,
}: {
  readings: ReadonlyMap<string, Reading>;
  pairs: ReadonlyMap<string, Pair>;
}) => {
  const { data, joined, readingsShown } = useMemo(() => {
    const shown = [...readings.values()].sort((x, y) => x.t - y.t).slice(-SHOWN);
    const byId = new Map(shown.map((r) => [r.id, r]));
    const ts = [...new Set(shown.map((r) => r.t))];
    const column = (sensor: 'a' | 'b') => {
      const at = new Map(shown.filter((r) => r.sensor === sensor).map((r) => [r.t, r.value]));
      return ts.map((t) => at.get(t) ?? null);
    };
    const joined: Joined[] = [];
    for (const pair of pairs.values()) {
      const a = byId.get(pair.a);
      const b = byId.get(pair.b);
      if (a && b) joined.push({ a, b });
    }
    const data: uPlot.AlignedData = [ts.map((t) => t / 1000), column('a'), column('b')];
    return { data, joined, readingsShown: shown.length };
  }, [readings, pairs]);
  const marks = useRef<readonly Joined[]>(joined);
  marks.current = joined;

  return (
    <Chart
      optionsKey="sensors"
      height={240}
      data={data}
      box={{
        'data-testid': 'sensors-chart',
        'data-readings': readingsShown,
        'data-pairs': joined.length,
      }}
      options={() => ({
        scales: { y: { range: (_u, min, max) => [Math.min(0, min), Math.max(100, max)] } },
        axes: [{}, { label: 'value', size: 50 }],
        series: [
          {},
          ...(['a', 'b'] as const).map((sensor) => ({
            label: `sensor ${sensor.toUpperCase()}`,
            stroke: SENSOR_COLORS[sensor],
            width: 1.5,
            spanGaps: true,
            points: { show: true, size: 6, fill: SENSOR_COLORS[sensor] },
          })),
        ],
        hooks: { draw: [markPairs(marks)] },
      })}
    />
  );
};
