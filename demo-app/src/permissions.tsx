/**
 * Low-latency lookups: an ACL editor on `acl/<space>` (map `grants`: subject →
 * actions, `*` for all) and a lookup box answered by the read-only `can` query
 * from the node's replica (`useQuery`), with the browser-measured latency of
 * the last lookups as a chart and its p50/p99.
 */
import { useEffect, useRef, useState, useSyncExternalStore, type FormEvent } from 'react';
import { useClient, useDoc, useMap } from '@stateweave/client/react';
import { formatMs } from './format.js';
import type { DemoFunctions } from './functions.js';
import { useQuery, useTracked, type Track } from './hooks.js';
import { LatencyChart } from './latency-chart.js';
import { createLatencyLog } from './latency.js';
import { mountView } from './mount.js';
import { SaveState } from './save-state.js';
import type { Session } from './session.js';

/** Lookups kept for the chart and the percentiles. */
const KEEP = 100;
/** Lookups one "Measure" click makes, one after another. */
const MEASURE = 50;

const parseActions = (raw: string): string[] => [
  ...new Set(raw.split(/[\s,]+/).filter((a) => a !== '')),
];

type Question = { readonly acl: string; readonly subject: string; readonly action: string };

const Permissions = ({ session, track }: { session: Session; track: Track }) => {
  const handle = useDoc(`acl/${session.space}`);
  useTracked(handle, track);
  const grantsMap = handle.doc.getMap<string[]>('grants');
  const grants = useMap(grantsMap);
  const client = useClient<DemoFunctions>();
  const [log] = useState(() => createLatencyLog(KEEP));
  const latency = useSyncExternalStore(log.subscribe, log.get);

  const [subject, setSubject] = useState('');
  const [actions, setActions] = useState('');
  const grant = (event: FormEvent) => {
    event.preventDefault();
    const who = subject.trim();
    const what = parseActions(actions);
    if (who === '' || what.length === 0) return;
    grantsMap.set(who, what);
    setSubject('');
    setActions('');
  };

  // The lookup box: the query runs whenever the question asked changes.
  const [askSubject, setAskSubject] = useState('');
  const [askAction, setAskAction] = useState('');
  const [question, setQuestion] = useState<Question | null>(null);
  const lookup = useQuery('can', question ?? { acl: session.space, subject: '-', action: '-' }, {
    enabled: question !== null,
  });
  const ask = (event: FormEvent) => {
    event.preventDefault();
    const next = { acl: session.space, subject: askSubject.trim(), action: askAction.trim() };
    if (next.subject === '' || next.action === '') return;
    if (question && next.subject === question.subject && next.action === question.action)
      lookup.refetch(); // the same question again: a new lookup all the same
    else setQuestion(next);
  };
  // Each answered lookup is one sample (`lookup` is a new object per settled call).
  useEffect(() => {
    if (lookup.status === 'done' && lookup.ms !== undefined) log.add(lookup.ms);
  }, [lookup, log]);

  // "Measure": lookups of the granted subjects, one after another, bounded.
  const [measured, setMeasured] = useState<number | null>(null);
  const [measureError, setMeasureError] = useState<string | null>(null);
  const stop = useRef<AbortController | null>(null);
  useEffect(() => () => stop.current?.abort(), []);
  const measure = async () => {
    const abort = new AbortController();
    stop.current = abort;
    setMeasureError(null);
    const subjects = [...grants.keys(), 'nobody'];
    for (let i = 0; i < MEASURE && !abort.signal.aborted; i++) {
      setMeasured(i);
      const input = { acl: session.space, subject: subjects[i % subjects.length]!, action: 'read' };
      const started = performance.now();
      try {
        await client.query('can', input, { signal: abort.signal });
        log.add(performance.now() - started);
      } catch (err) {
        if (!abort.signal.aborted) setMeasureError((err as Error).message);
        break;
      }
    }
    setMeasured(null);
  };

  const answer =
    lookup.status === 'idle'
      ? { text: 'Ask whether a subject may do an action.', state: undefined }
      : lookup.status === 'pending'
        ? { text: '…', state: 'pending' }
        : lookup.status === 'error'
          ? { text: `error: ${lookup.error?.message ?? 'failed'}`, state: 'error' }
          : {
              text: `${question?.subject} ${lookup.data?.allowed ? 'may' : 'may not'} ${question?.action}`,
              state: lookup.data?.allowed ? 'allowed' : 'denied',
            };
  const subjects = [...grants.keys()].sort();

  return (
    <section className="view" data-view="permissions">
      <div className="view-head">
        <div>
          <h1>Permissions</h1>
          <p className="sub">
            ACL document acl/{session.space}; lookups run the read-only can query on the node&apos;s
            local replica.
          </p>
        </div>
        <SaveState handle={handle} testId="acl-save-state" />
      </div>
      <div className="grid-2">
        <div className="card">
          <h2>Access control list</h2>
          <form className="row" onSubmit={grant}>
            <input
              placeholder="subject, e.g. alice"
              data-testid="grant-subject"
              value={subject}
              onChange={(e) => setSubject(e.target.value)}
            />
            <input
              placeholder="actions, e.g. read, write or *"
              data-testid="grant-actions"
              value={actions}
              onChange={(e) => setActions(e.target.value)}
            />
            <button className="btn primary" type="submit" data-testid="grant-add">
              Grant
            </button>
          </form>
          <table className="table">
            <thead>
              <tr>
                <th>Subject</th>
                <th>Actions</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {subjects.map((who) => (
                <tr key={who} data-testid="grant" data-subject={who}>
                  <td>
                    <code>{who}</code>
                  </td>
                  <td>
                    {(grants.get(who) ?? []).map((a) => (
                      <span key={a} className="chip">
                        {a}
                      </span>
                    ))}
                  </td>
                  <td className="num">
                    <button
                      className="btn small"
                      title={`remove ${who}`}
                      onClick={() => grantsMap.delete(who)}
                    >
                      Remove
                    </button>
                  </td>
                </tr>
              ))}
              {subjects.length === 0 && (
                <tr>
                  <td colSpan={3} className="muted">
                    No grants yet: everything is denied.
                  </td>
                </tr>
              )}
            </tbody>
          </table>
        </div>
        <div className="card">
          <h2>Lookup</h2>
          <form className="row" onSubmit={ask}>
            <input
              placeholder="subject"
              data-testid="can-subject"
              value={askSubject}
              onChange={(e) => setAskSubject(e.target.value)}
            />
            <input
              placeholder="action"
              data-testid="can-action"
              value={askAction}
              onChange={(e) => setAskAction(e.target.value)}
            />
            <button className="btn primary" type="submit" data-testid="can-ask">
              Check
            </button>
          </form>
          <div
            className="answer"
            data-testid="can-answer"
            data-state={answer.state}
            data-question={
              lookup.status === 'done' && question
                ? `${question.subject}:${question.action}`
                : undefined
            }
          >
            {answer.text}
          </div>
          <span className="muted" data-testid="can-latency">
            {lookup.status === 'done' && lookup.ms !== undefined
              ? `answered in ${formatMs(lookup.ms)}`
              : ''}
          </span>
          <h2 className="spaced">Lookup latency, last {KEEP} calls</h2>
          <LatencyChart latency={latency} testId="can-lookups" />
          <div className="row">
            <button
              className="btn"
              data-testid="can-measure"
              disabled={measured !== null}
              onClick={() => void measure()}
            >
              {measured === null
                ? `Measure ${MEASURE} lookups`
                : `measuring ${measured + 1}/${MEASURE}…`}
            </button>
            {measureError && <span className="error">lookup failed: {measureError}</span>}
          </div>
        </div>
      </div>
    </section>
  );
};

export const createPermissionsView = (session: Session, track: Track): HTMLElement =>
  mountView(session, <Permissions session={session} track={track} />);
