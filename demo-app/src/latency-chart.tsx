/** The latency of the last calls (uPlot): one point per call, in call order, and its p50/p99. */
import { useMemo } from 'react';
import type uPlot from 'uplot';
import { Chart } from './chart.js';
import { formatMs } from './format.js';
import type { LatencySnapshot } from './latency.js';

export const LatencyChart = ({
  latency,
  testId,
  color = '#4f46e5',
}: {
  latency: LatencySnapshot;
  testId: string;
  color?: string;
}) => {
  const data = useMemo((): uPlot.AlignedData => {
    const first = latency.total - latency.samples.length;
    return [latency.samples.map((_, i) => first + i + 1), [...latency.samples]];
  }, [latency]);
  const figure = (ms: number | undefined) => (ms === undefined ? '—' : formatMs(ms));
  return (
    <div className="latency" data-testid={testId}>
      <div className="stats compact">
        <div>
          <span className="big" data-testid={`${testId}-p50`}>
            {figure(latency.p50)}
          </span>
          <small>p50</small>
        </div>
        <div>
          <span className="big" data-testid={`${testId}-p99`}>
            {figure(latency.p99)}
          </span>
          <small>p99</small>
        </div>
        <div>
          <span className="big" data-testid={`${testId}-count`}>
            {latency.samples.length}
          </span>
          <small>last calls</small>
        </div>
      </div>
      <Chart
        optionsKey={color}
        height={140}
        data={data}
        box={{ 'data-testid': `${testId}-chart`, 'data-samples': latency.samples.length }}
        options={() => ({
          legend: { show: false },
          scales: {
            x: { time: false },
            y: { range: (_u, _min, max) => [0, Math.max(5, max * 1.15)] },
          },
          axes: [{}, { label: 'ms', size: 44 }],
          series: [
            {},
            {
              label: 'ms',
              stroke: color,
              width: 1.5,
              points: { show: true, size: 4, fill: color },
            },
          ],
        })}
      />
    </div>
  );
};
