#!/usr/bin/env node
/**
 * Joiners of big-doc.mjs in their own process: `node big-doc-joiners.mjs <json>`
 * ({port, room, hocuspocus, count, localAddress}). Prints READY, waits for a line
 * on stdin, then starts `count` raw joins at once (raw-joiner.mjs) and prints one
 * JSON line: { times: [ms…], bytes: [n…], errors: [message…] }.
 */
import { createInterface } from 'node:readline';
import { rawJoin } from './raw-joiner.mjs';

const spec = JSON.parse(process.argv[2]);
console.log('READY');
const lines = createInterface({ input: process.stdin });
lines.once('line', async () => {
  const results = await Promise.allSettled(
    Array.from({ length: spec.count }, () =>
      rawJoin({ ...spec, timeoutMs: spec.timeoutMs ?? 60_000 }),
    ),
  );
  const out = { times: [], bytes: [], errors: [] };
  for (const r of results) {
    if (r.status === 'fulfilled') {
      out.times.push(r.value.ms);
      out.bytes.push(r.value.bytes);
    } else out.errors.push(r.reason.message);
  }
  console.log(JSON.stringify(out));
  lines.close();
  process.exit(0);
});
