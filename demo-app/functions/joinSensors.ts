/**
 * Streaming join: pairs readings of sensor `a` and sensor `b` whose timestamps are
 * within `windowMs`. Readings and pairs are keyed by the readings' ids, so a
 * duplicate delivery (or a replica doing the same join) writes the same keys and
 * converges instead of double-counting.
 */
import { defineFunction } from '@stateweave/server/define';
import { num, object, str } from './validate.js';

interface Reading {
  readonly id: string;
  readonly sensor: 'a' | 'b';
  readonly t: number;
  readonly value: number;
}

export default defineFunction({
  name: 'joinSensors',
  input: object((v) => {
    const sensor = str(v, 'sensor');
    if (sensor !== 'a' && sensor !== 'b') throw new Error('sensor must be "a" or "b"');
    return {
      stream: str(v, 'stream'),
      reading: { id: str(v, 'id'), sensor, t: num(v, 't'), value: num(v, 'value') } as Reading,
      windowMs: typeof v.windowMs === 'number' ? v.windowMs : 1000,
    };
  }),
  doc: (input) => `sensors/${input.stream}`,
  handler({ doc }, { reading, windowMs }) {
    const readings = doc.getMap<Reading>('readings');
    const pairs = doc.getMap<{ a: string; b: string; dt: number; sum: number }>('pairs');
    readings.set(reading.id, reading);
    let made = 0;
    for (const other of readings.values()) {
      if (other.sensor === reading.sensor || Math.abs(other.t - reading.t) > windowMs) continue;
      const [a, b] = reading.sensor === 'a' ? [reading, other] : [other, reading];
      const key = `${a.id}|${b.id}`;
      if (pairs.has(key)) continue;
      pairs.set(key, { a: a.id, b: b.id, dt: b.t - a.t, sum: a.value + b.value });
      made++;
    }
    return { pairs: pairs.size, made };
  },
});
