/**
 * Unique visitors per page over time, drawn with uPlot: each line counts the
 * visitors whose first visit to that page came before each moment. The data is
 * the `visitors` maps themselves (visitor → first visit, in ms), so every open
 * browser draws the same picture as visits arrive.
 */
import { useEffect, useMemo, useRef } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

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
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const labels = series.map((s) => `${s.label}:${s.color}`).join(',');
  const data = useMemo(() => toColumns(series, Date.now()), [series]);

  // One plot per set of series; the data is swapped in below.
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const made = new uPlot(
      {
        width: el.clientWidth || 600,
        height: 220,
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
      },
      data,
      el,
    );
    plot.current = made;
    const resize = new ResizeObserver(() => made.setSize({ width: el.clientWidth, height: 220 }));
    resize.observe(el);
    return () => {
      resize.disconnect();
      made.destroy();
      plot.current = null;
    };
    // Rebuilt only when the series themselves change; new data is swapped in below.
  }, [labels]);

  useEffect(() => plot.current?.setData(data), [data]);

  return <div ref={box} className="chart" data-testid="visits-chart" />;
};
