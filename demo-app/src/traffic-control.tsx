/**
 * "Simulate traffic": N new visitors a second for T seconds, each a real
 * `trackVisit` invocation through the SDK, spread over the four pages; shows
 * the answered calls per second and the browser-measured p50/p99 while it runs.
 * The visitors land in the same documents as real ones, so the chart above
 * climbs in every open browser.
 */
import { useEffect, useRef, useState, type FormEvent } from 'react';
import { useClient } from '@stateweave/client/react';
import { formatMs } from './format.js';
import type { DemoFunctions } from './functions.js';
import type { Session } from './session.js';
import { LIMITS, runTraffic, type TrafficProgress } from './traffic.js';
import { PAGES, pageKey } from './visits.js';

const figure = (ms: number | undefined) => (ms === undefined ? '—' : formatMs(ms));

export const TrafficControl = ({ session }: { session: Session }) => {
  const client = useClient<DemoFunctions>();
  const [perSecond, setPerSecond] = useState(20);
  const [seconds, setSeconds] = useState(5);
  const [progress, setProgress] = useState<TrafficProgress | null>(null);
  const run = useRef<AbortController | null>(null);
  useEffect(() => () => run.current?.abort(), []);

  const start = (event: FormEvent) => {
    event.preventDefault();
    if (run.current) {
      run.current.abort(); // the button is "Stop" while a run is on
      return;
    }
    const abort = new AbortController();
    run.current = abort;
    const id = Math.random().toString(36).slice(2, 8);
    void runTraffic(
      { perSecond, seconds },
      (i) =>
        client.invoke('trackVisit', {
          page: pageKey(session, PAGES[i % PAGES.length]!),
          visitor: `sim-${id}-${i}`,
        }),
      setProgress,
      abort.signal,
    ).finally(() => {
      if (run.current === abort) run.current = null;
    });
  };

  const running = progress?.running ?? false;
  return (
    <div className="card" data-testid="traffic">
      <h2>Simulate traffic</h2>
      <form className="row" onSubmit={start}>
        <label>
          <input
            type="number"
            data-testid="traffic-rate-input"
            min={LIMITS.perSecond.min}
            max={LIMITS.perSecond.max}
            value={perSecond}
            disabled={running}
            onChange={(e) => setPerSecond(e.target.valueAsNumber)}
          />{' '}
          visitors/s
        </label>
        <label>
          for{' '}
          <input
            type="number"
            data-testid="traffic-seconds-input"
            min={LIMITS.seconds.min}
            max={LIMITS.seconds.max}
            value={seconds}
            disabled={running}
            onChange={(e) => setSeconds(e.target.valueAsNumber)}
          />{' '}
          s
        </label>
        <button className="btn primary" type="submit" data-testid="traffic-start">
          {running ? 'Stop' : 'Start'}
        </button>
      </form>
      <p className="muted">
        Each visitor is one trackVisit call (at most {LIMITS.perSecond.max}/s for{' '}
        {LIMITS.seconds.max} s); latency is measured here, in the browser.
      </p>
      <div
        className="stats compact"
        data-testid="traffic-figures"
        data-state={progress === null ? 'idle' : running ? 'running' : 'done'}
      >
        <div>
          <span className="big" data-testid="traffic-answered">
            {progress ? `${progress.answered}/${progress.planned}` : '—'}
          </span>
          <small>calls answered</small>
        </div>
        <div>
          <span className="big" data-testid="traffic-rate">
            {progress ? progress.callsPerSecond.toFixed(1) : '—'}
          </span>
          <small>calls/s</small>
        </div>
        <div>
          <span className="big" data-testid="traffic-p50">
            {figure(progress?.p50)}
          </span>
          <small>p50</small>
        </div>
        <div>
          <span className="big" data-testid="traffic-p99">
            {figure(progress?.p99)}
          </span>
          <small>p99</small>
        </div>
      </div>
      {progress && (progress.failed > 0 || progress.skipped > 0) && (
        <p className="error" data-testid="traffic-problems">
          {progress.failed} failed{progress.lastError ? ` (${progress.lastError})` : ''},{' '}
          {progress.skipped} skipped (too many unanswered)
        </p>
      )}
    </div>
  );
};
