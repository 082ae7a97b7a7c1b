#!/usr/bin/env node
/**
 * `npm run cluster`: three nodes on 127.0.0.1 (ports 4001–4003 unless
 * STATEWEAVE_CLUSTER_PORT sets the first), each with its own data directory
 * under ./data/cluster/, peered with the other two. Logs are prefixed with the
 * node id; Ctrl-C stops all three gracefully. Every node serves the demo app
 * (demo-app/dist, built by `npm run cluster`) and its functions, so the demo
 * can be opened on any of them. For trying the cluster out, not for production
 * (one machine is one failure domain). STATEWEAVE_CLUSTER_DATA moves the data.
 *
 * `npm run cluster -- --redis`: the same three nodes on a Redis backplane
 * instead of the mesh; this script starts its own redis-server on port
 * first + 10 (data under ./data/cluster/redis, AOF on) and stops it last.
 * `--redis=redis://host:port` uses a Redis you run instead.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const main = fileURLToPath(new URL('../dist/src/main.js', import.meta.url));
const demo = fileURLToPath(new URL('../../demo-app/dist', import.meta.url));
const demoFunctions = fileURLToPath(new URL('../../demo-app/functions', import.meta.url));
// The demo when it is built (npm run cluster builds it); its functions always.
const demoArgs = [
  ...(existsSync(join(demo, 'index.html')) ? ['--static', demo] : []),
  '--functions',
  demoFunctions,
];
const firstPort = Number(process.env.STATEWEAVE_CLUSTER_PORT ?? 4001);
const dataRoot = resolve(process.env.STATEWEAVE_CLUSTER_DATA ?? join('data', 'cluster'));
// One secret for this run's nodes; set STATEWEAVE_PEER_SECRET to keep it fixed.
const peerSecret = process.env.STATEWEAVE_PEER_SECRET ?? randomBytes(24).toString('base64url');
const nodes = [0, 1, 2].map((i) => ({
  id: `n${i + 1}`,
  port: firstPort + i,
  data: join(dataRoot, `n${i + 1}`),
}));

const redisArg = process.argv.slice(2).find((a) => a === '--redis' || a.startsWith('--redis='));
let redis;
let redisUrl;
if (redisArg === '--redis') {
  const port = firstPort + 10;
  const dir = join(dataRoot, 'redis');
  mkdirSync(dir, { recursive: true });
  redis = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes'],
    { stdio: ['ignore', 'pipe', 'pipe'], detached: true },
  );
  await new Promise((ready, fail) => {
    const lines = createInterface({ input: redis.stdout });
    lines.on('line', (line) => {
      if (line.includes('Ready to accept connections')) ready();
    });
    redis.once('error', fail);
    redis.once('exit', (code) => fail(new Error(`redis-server exited (${code})`)));
  });
  redisUrl = `redis://127.0.0.1:${port}`;
} else if (redisArg) redisUrl = redisArg.slice('--redis='.length);

const children = nodes.map((node) => {
  mkdirSync(node.data, { recursive: true });
  const peers = nodes.filter((n) => n !== node).map((n) => `ws://127.0.0.1:${n.port}`);
  const links = redisUrl ? ['--redis', redisUrl] : ['--peers', peers.join(',')];
  const child = spawn(
    process.execPath,
    [
      '--no-node-snapshot', // isolated-vm on Node 20+ (docs/functions.md)
      main,
      'serve',
      '--host',
      '127.0.0.1',
      '--port',
      String(node.port),
      '--data',
      node.data,
      '--node-id',
      node.id,
      ...links,
      ...demoArgs,
    ],
    // Own process group: Ctrl-C reaches only this script, which stops each node once (SIGTERM).
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, STATEWEAVE_PEER_SECRET: peerSecret },
      detached: true,
    },
  );
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on('line', (line) => console.log(`[${node.id}] ${line}`));
  }
  child.on('exit', (code, signal) => {
    console.log(`[${node.id}] exited (${code ?? signal})`);
    if (!stopping) stop();
    // Our own redis-server goes last, once every node has left.
    if (redis && children.every((c) => c.exitCode !== null || c.signalCode !== null))
      redis.kill('SIGTERM');
  });
  return child;
});

console.log(
  [
    `Stateweave: three-node cluster on 127.0.0.1 (${redisUrl ? `Redis backplane ${redisUrl}` : 'WebSocket mesh'})`,
    ...nodes.map(
      (n) =>
        `  ${n.id}  open http://localhost:${n.port}/   ws://127.0.0.1:${n.port}/<doc>   data ${n.data}`,
    ),
    'Open the demo on two nodes (e.g. 4001 and 4002) to see them converge. Ctrl-C stops all three.',
  ].join('\n'),
);

let stopping = false;
function stop() {
  if (stopping) return;
  stopping = true;
  for (const child of children) if (child.exitCode === null) child.kill('SIGTERM');
}
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
