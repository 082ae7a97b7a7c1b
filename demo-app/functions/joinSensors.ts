/**
 * Streaming join: pairs readings of sensor `a` and sensor `b` whose timestamps are
 * within `windowMs`. Readings and pairs are keyed by the readings' ids, so a
 * duplicate delivery (or a replica doing the same join) writes the same keys and
 * converges instead of double-counting.
 */
import { defineFunction } from '@stateweave/server/define';
import * as z from 'zod/mini';

const name = z.string().check(z.minLength(1), z.maxLength(200));

/** A reading as stored in the map `readings` (by id). */
export interface Reading {
  readonly id: string;
  readonly sensor: 'a' | 'b';
  /** When it was measured, in ms. */
  readonly t: number;
  readonly value: number;
}

/** A joined pair as stored in the map `pairs` (by `<a id>|<b id>`). */
export interface Pair {
  readonly a: string;
  readonly b: string;
  /** b.t - a.t, in ms. */
  readonly dt: number;
  readonly sum: number;
}

export default defineFunction({
  name: 'joinSensors',
  input: z.object({
    stream: name,
    id: name,
    sensor: z.enum(['a', 'b']),
    t: z.number(),
    value: z.number(),
    /** @default 1000 */
    windowMs: z.optional(z.number().check(z.int(), z.positive(), z.maximum(60_000))),
  }),
  doc: (input) => `sensors/${input.stream}`,
  handler({ doc }, { id, sensor, t, value, windowMs = 1000 }) {
    const reading: Reading = { id, sensor, t, value };
    const readings = doc.getMap<Reading>('readings');
    const pairs = doc.getMap<Pair>('pairs');
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
