/**
 * Streaming aggregation: every page view calls `trackVisit({ page, visitor })`,
 * which adds the visitor to the map `visitors` of `analytics/<page>`. The view
 * is React on `@stateweave/client/react`: each page's document is a `useDoc`,
 * its map a `useMap`, so the table and the chart update live in every browser.
 * "Simulate traffic" sends many visitors through the same function.
 */
import { useSyncExternalStore } from 'react';
import { useDoc, useMap } from '@stateweave/client/react';
import { colorAt } from './colors.js';
import { useTracked, type Track } from './hooks.js';
import { mountView } from './mount.js';
import type { Session } from './session.js';
import { TrafficControl } from './traffic-control.js';
import { VisitsChart, type VisitsSeries } from './visits-chart.js';
import { PAGES, pageKey, type CallLog, type Page } from './visits.js';

/** One page's visitors (visitor id → first visit in ms), from its document. */
const usePageVisitors = (session: Session, page: Page, track: Track) => {
  const handle = useDoc(`analytics/${pageKey(session, page)}`);
  useTracked(handle, track);
  return useMap(handle.doc.getMap<number>('visitors'));
};

const Analytics = ({ session, track, log }: { session: Session; track: Track; log: CallLog }) => {
  const visitors = {
    editor: usePageVisitors(session, 'editor', track),
    analytics: usePageVisitors(session, 'analytics', track),
    sensors: usePageVisitors(session, 'sensors', track),
    permissions: usePageVisitors(session, 'permissions', track),
  } satisfies Record<Page, ReadonlyMap<string, number>>;
  const calls = useSyncExternalStore(log.subscribe, log.get);
  const everyone = new Set(PAGES.flatMap((page) => [...visitors[page].keys()]));
  const series: VisitsSeries[] = PAGES.map((page, i) => ({
    label: page,
    color: colorAt(i + 1),
    times: [...visitors[page].values()],
  }));

  return (
    <section className="view" data-view="analytics">
      <div className="view-head">
        <div>
          <h1>Live analytics</h1>
          <p className="sub">
            Unique visitors per page. Each page view calls the trackVisit function; the table and
            the chart observe the analytics documents.
          </p>
        </div>
      </div>
      <div className="card">
        <h2>Unique visitors over time</h2>
        <VisitsChart series={series} />
      </div>
      <TrafficControl session={session} />
      <div className="grid-2">
        <div className="card">
          <table className="table">
            <thead>
              <tr>
                <th>Page</th>
                <th className="num">Unique visitors</th>
                <th>Last visit</th>
              </tr>
            </thead>
            <tbody>
              {PAGES.map((page) => {
                const last = Math.max(0, ...visitors[page].values());
                return (
                  <tr key={page} data-testid={`visits-${page}`}>
                    <td>{page}</td>
                    <td className="num" data-testid="unique">
                      {visitors[page].size}
                    </td>
                    <td className="muted">{last ? new Date(last).toLocaleTimeString() : '—'}</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
        <div className="card">
          <h2>Visitors in this space</h2>
          <span className="big" data-testid="visitors-total">
            {everyone.size}
          </span>
          <p className="muted">
            You are <code>{session.visitor}</code>
          </p>
          <h2>Recent calls</h2>
          <ul className="log" data-testid="visit-log">
            {calls.map((call, i) => (
              <li key={calls.length - i} className={call.failed ? 'error' : undefined}>
                {call.text}
              </li>
            ))}
          </ul>
        </div>
      </div>
    </section>
  );
};

/** Mounts the view (under StrictMode) into a new element. */
export const createAnalyticsView = (session: Session, track: Track, log: CallLog): HTMLElement =>
  mountView(session, <Analytics session={session} track={track} log={log} />);
