/**
 * Streaming join: two simulated sensors post readings through `joinSensors`,
 * which pairs readings of `a` and `b` within a time window in `sensors/<space>`.
 * The chart and the list of pairs observe that document (`useDoc`, `useMap`).
 */
import { useEffect, useRef, useState } from 'react';
import { useDoc, useMap } from '@stateweave/client/react';
import { formatMs } from './format.js';
import type { Pair, Reading } from './functions.js';
import { useInvoke, useTracked, type Track } from './hooks.js';
import { mountView } from './mount.js';
import { SENSOR_COLORS, SensorsChart } from './sensors-chart.js';
import type { Session } from './session.js';

type Sensor = 'a' | 'b';

const WINDOW_MS = 1000;
/** A stream stops by itself after this many readings (about ten minutes). */
const STREAM_READINGS = 600;

const SensorCard = ({ sensor, send }: { sensor: Sensor; send: (sensor: Sensor) => void }) => {
  const [streaming, setStreaming] = useState(false);
  const sendRef = useRef(send);
  sendRef.current = send;
  useEffect(() => {
    if (!streaming) return;
    let sent = 0;
    const timer = setInterval(
      () => {
        sendRef.current(sensor);
        if (++sent >= STREAM_READINGS) setStreaming(false);
      },
      600 + Math.random() * 600,
    );
    return () => clearInterval(timer);
  }, [streaming, sensor]);
  return (
    <div className="card sensor">
      <h2>
        <span className="dot" style={{ background: SENSOR_COLORS[sensor] }} /> Sensor{' '}
        {sensor.toUpperCase()}
      </h2>
      <p className="muted">
        Posts <code>{`{ sensor: "${sensor}", t, value }`}</code> to joinSensors.
      </p>
      <div className="row">
        <button className="btn primary" data-testid={`send-${sensor}`} onClick={() => send(sensor)}>
          Send reading
        </button>
        <button
          className={streaming ? 'btn on' : 'btn'}
          data-testid={`auto-${sensor}`}
          onClick={() => setStreaming((on) => !on)}
        >
          {streaming ? 'Stop stream' : 'Start stream'}
        </button>
      </div>
    </div>
  );
};

const Sensors = ({ session, track }: { session: Session; track: Track }) => {
  const stream = session.space;
  const handle = useDoc(`sensors/${stream}`);
  useTracked(handle, track);
  const readings = useMap(handle.doc.getMap<Reading>('readings'));
  const pairs = useMap(handle.doc.getMap<Pair>('pairs'));
  const { invoke } = useInvoke('joinSensors');
  const counter = useRef({ a: 0, b: 0 });
  const [tag] = useState(() => Math.random().toString(36).slice(2, 6));
  const [last, setLast] = useState('No readings sent yet.');

  const send = (sensor: Sensor): void => {
    counter.current[sensor] += 1;
    const reading = {
      stream,
      sensor,
      id: `${sensor}${counter.current[sensor]}-${tag}`,
      t: Date.now(),
      value: Math.round(Math.random() * 1000) / 10,
      windowMs: WINDOW_MS,
    };
    const started = performance.now();
    invoke(reading).then(
      (result) =>
        setLast(
          `${reading.id} = ${reading.value} → ${result.made} new pair(s) · ${formatMs(performance.now() - started)}`,
        ),
      (err: unknown) => setLast(`${reading.id} failed: ${(err as Error).message}`),
    );
  };

  const latest = [...pairs.entries()]
    .map(([key, pair]) => ({ key, pair, t: readings.get(pair.b)?.t ?? 0 }))
    .sort((x, y) => y.t - x.t)
    .slice(0, 20);

  return (
    <section className="view" data-view="sensors">
      <div className="view-head">
        <div>
          <h1>Sensors</h1>
          <p className="sub">
            Readings of sensor A and B are joined when their timestamps are within {WINDOW_MS} ms
            (document sensors/{stream}).
          </p>
        </div>
      </div>
      <div className="grid-3">
        <SensorCard sensor="a" send={send} />
        <SensorCard sensor="b" send={send} />
        <div className="card">
          <h2>Stream</h2>
          <div className="stats">
            <div>
              <span className="big" data-testid="reading-count">
                {readings.size}
              </span>
              <small>readings</small>
            </div>
            <div>
              <span className="big" data-testid="pair-count">
                {pairs.size}
              </span>
              <small>joined pairs</small>
            </div>
          </div>
          <p className="muted" data-testid="sensor-result">
            {last}
          </p>
        </div>
      </div>
      <div className="card">
        <h2>Both streams, joined pairs marked</h2>
        <SensorsChart readings={readings} pairs={pairs} />
        <p className="muted chart-note">
          Dashed segments with rings join the two readings of each pair (the latest readings only).
        </p>
      </div>
      <div className="card">
        <h2>Joined pairs (latest 20)</h2>
        <table className="table">
          <thead>
            <tr>
              <th>Reading A</th>
              <th>Reading B</th>
              <th className="num">Δt</th>
              <th className="num">Sum</th>
              <th>Time</th>
            </tr>
          </thead>
          <tbody>
            {latest.map(({ key, pair, t }) => (
              <tr key={key} data-testid="pair" data-key={key}>
                <td>
                  <code>{pair.a}</code>
                </td>
                <td>
                  <code>{pair.b}</code>
                </td>
                <td className="num">{pair.dt} ms</td>
                <td className="num">{pair.sum.toFixed(1)}</td>
                <td className="muted">{t ? new Date(t).toLocaleTimeString() : ''}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
};

export const createSensorsView = (session: Session, track: Track): HTMLElement =>
  mountView(session, <Sensors session={session} track={track} />);
