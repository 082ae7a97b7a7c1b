#!/usr/bin/env node
/**
 * Joiners of big-doc.ts in their own process: `node big-doc-joiners.js <json>`
 * ({port, room, hocuspocus, count, localAddress}). Prints READY, waits for a line
 * on stdin, then starts `count` raw joins at once (raw-joiner.ts) and prints one
 * JSON line: { times: [ms…], bytes: [n…], errors: [message…] }.
 */
import { createInterface } from 'node:readline';
import { rawJoin, type RawJoinSpec } from './raw-joiner.js';
import { errorMessage } from './wait.js';

/** The process's one argument, as JSON. */
export interface JoinersSpec extends RawJoinSpec {
  count: number;
}
/** The one JSON line the process prints. */
export interface JoinersResult {
  times: number[];
  bytes: number[];
  errors: string[];
  /** this process's CPU time (user + system) for its joins, ms */
  cpuMs?: number;
}

const spec = JSON.parse(process.argv[2] ?? '{}') as JoinersSpec;
console.log('READY');
const lines = createInterface({ input: process.stdin });
lines.once('line', async () => {
  const cpu0 = process.cpuUsage();
  const results = await Promise.allSettled(
    Array.from({ length: spec.count }, () =>
      rawJoin({ ...spec, timeoutMs: spec.timeoutMs ?? 60_000 }),
    ),
  );
  const cpu = process.cpuUsage(cpu0);
  const out: JoinersResult = {
    times: [],
    bytes: [],
    errors: [],
    cpuMs: (cpu.user + cpu.system) / 1000,
  };
  for (const r of results) {
    if (r.status === 'fulfilled') {
      out.times.push(r.value.ms);
      out.bytes.push(r.value.bytes);
    } else out.errors.push(errorMessage(r.reason));
  }
  console.log(JSON.stringify(out));
  lines.close();
  process.exit(0);
});
