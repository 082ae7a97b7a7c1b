/**
 * Unique visitors per page over time, drawn with uPlot: each line counts the
 * visitors whose first visit to that page came before each moment. The data is
 * the `visitors` maps themselves (visitor → first visit, in ms), so every open
 * browser draws the same picture as visits arrive.
 */
import { useMemo } from 'react';
import uPlot from 'uplot';
import { Chart } from './chart.js';

export interface VisitsSeries {
  readonly label: string;
  readonly color: string;
  /** First-visit times in ms. */
  readonly times: readonly number[];
}

/** uPlot's columns: x (seconds) and one cumulative count per series, on a shared x. */
const toColumns = (series: readonly VisitsSeries[], nowMs: number): uPlot.AlignedData => {
  const xs = [...new Set(series.flatMap((s) => s.times)), nowMs].sort((a, b) => a - b);
  const counts = series.map((s) => {
    const sorted = [...s.times].sort((a, b) => a - b);
    let seen = 0;
    return xs.map((x) => {
      while (seen < sorted.length && sorted[seen]! <= x) seen++;
      return seen;
    });
  });
  return [xs.map((x) => x / 1000), ...counts];
};

export const VisitsChart = ({ series }: { series: readonly VisitsSeries[] }) => {
  const data = useMemo(() => toColumns(series, Date.now()), [series]);
  // Page views drawn (each line ends at its page's count): for tests and screen readers.
  const visits = series.reduce((n, s) => n + s.times.length, 0);
  return (
    <Chart
      optionsKey={series.map((s) => `${s.label}:${s.color}`).join(',')}
      height={220}
      data={data}
      box={{ 'data-testid': 'visits-chart', 'data-visits': visits }}
      options={() => ({
        scales: { y: { range: (_u, _min, max) => [0, Math.max(3, max + 1)] } },
        axes: [{}, { label: 'unique visitors', size: 50 }],
        series: [
          {},
          ...series.map((s) => ({
            label: s.label,
            stroke: s.color,
            width: 2,
            paths: uPlot.paths.stepped?.({ align: 1 }),
          })),
        ],
      })}
    />
  );
};
