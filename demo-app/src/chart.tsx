/**
 * A uPlot chart as a React component: the plot is built once per `optionsKey`
 * (a string naming everything its options depend on) and gets new data through
 * `setData`, so a live chart does not rebuild its canvas on every change. It
 * follows its box's width.
 */
import { useEffect, useRef, type HTMLAttributes } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

export interface ChartProps {
  /** The options (width and height are set here). */
  readonly options: () => Omit<uPlot.Options, 'width' | 'height'>;
  /** Changes when `options` would build a different plot. */
  readonly optionsKey: string;
  readonly data: uPlot.AlignedData;
  readonly height: number;
  /** Attributes of the box (a test id, data-* figures). */
  readonly box?: HTMLAttributes<HTMLDivElement> & Record<`data-${string}`, string | number>;
}

export const Chart = ({ options, optionsKey, data, height, box }: ChartProps) => {
  const element = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const latest = useRef(data);
  latest.current = data;

  useEffect(() => {
    const el = element.current;
    if (!el) return;
    const made = new uPlot(
      { ...options(), width: el.clientWidth || 600, height },
      latest.current,
      el,
    );
    plot.current = made;
    const resize = new ResizeObserver(() => made.setSize({ width: el.clientWidth, height }));
    resize.observe(el);
    return () => {
      resize.disconnect();
      made.destroy();
      plot.current = null;
    };
    // Rebuilt only for other options; data changes are swapped in below.
  }, [optionsKey, height]);

  useEffect(() => plot.current?.setData(data), [data]);

  return <div ref={element} className="chart" {...box} />;
};
