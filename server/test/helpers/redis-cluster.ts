/**
 * A real 3-master Redis Cluster for tests: redis-server processes with
 * `--cluster-enabled yes`, each on a free port of 127.0.0.1 (its cluster bus on
 * port + 10000, free too) in a temp directory of its own, joined by
 * `redis-cli --cluster create … --cluster-replicas 0`, and stopped by the pids
 * we started.
 */
import { execFile, type ChildProcess } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { freePorts } from './cluster.js';
import { tempDir } from './node.js';
import { spawnRedis, stopProcess } from './redis.js';
import { waitFor } from './wait.js';

export interface TestRedisCluster {
  /** The masters' ports; any one of them finds the whole cluster. */
  readonly ports: readonly number[];
  /** With `tls`: the CA certificate file that signed the servers' certificate (trust it to connect). */
  readonly caFile?: string;
  /** `redis[s]://[:password@]127.0.0.1:<first port>`. */
  readonly url: string;
  /** The URL of the master on `port`. */
  urlOf(port: number): string;
  /** A plain connection to one master (its own keys only), closed by `close`. */
  master(port: number): Redis;
  /** The port of the master serving `slot` now. */
  ownerOf(slot: number): Promise<number>;
  /** Migrates `slot` with its keys to the master on `toPort` (what resharding does, for one slot). */
  moveSlot(slot: number, toPort: number): Promise<void>;
  /** Stops every process and removes the directories. */
  close(): Promise<void>;
}

const run = promisify(execFile);

const isFree = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });

/** `count` free ports whose cluster-bus port (+10000) is free too. */
const clusterPorts = async (count: number): Promise<number[]> => {
  const ports: number[] = [];
  for (let attempt = 0; attempt < 200 && ports.length < count; attempt++) {
    const [port] = (await freePorts(1)) as [number];
    if (port + 10_000 > 65_535 || ports.includes(port) || ports.includes(port + 10_000)) continue;
    if (await isFree(port + 10_000)) ports.push(port);
  }
  if (ports.length < count) throw new Error('no free ports for a Redis Cluster');
  return ports;
};

/** A CA and a certificate for 127.0.0.1 signed by it, in `dir`. */
const makeCertificates = async (
  dir: string,
): Promise<{ ca: string; cert: string; key: string }> => {
  const ca = join(dir, 'ca.crt');
  const caKey = join(dir, 'ca.key');
  const cert = join(dir, 'redis.crt');
  const key = join(dir, 'redis.key');
  const csr = join(dir, 'redis.csr');
  const ext = join(dir, 'san.ext');
  const openssl = (...args: string[]) => run('openssl', args, { timeout: 30_000 });
  const rsa = ['-newkey', 'rsa:2048', '-nodes'];
  await openssl(
    'req',
    '-x509',
    ...rsa,
    '-days',
    '1',
    '-subj',
    '/CN=test-ca',
    '-keyout',
    caKey,
    '-out',
    ca,
  );
  await openssl('req', ...rsa, '-subj', '/CN=127.0.0.1', '-keyout', key, '-out', csr);
  await writeFile(ext, 'subjectAltName=IP:127.0.0.1\n');
  await openssl(
    'x509',
    '-req',
    '-in',
    csr,
    '-CA',
    ca,
    '-CAkey',
    caKey,
    '-CAcreateserial',
    '-days',
    '1',
    '-extfile',
    ext,
    '-out',
    cert,
  );
  return { ca, cert, key };
};

/**
 * `password`: every master requires it (`requirepass`, and `masterauth` between them).
 * `tls`: clients and the cluster bus speak TLS only (`rediss://`), with a CA made for the run.
 */
export const startRedisCluster = async (
  masters = 3,
  options: { password?: string; tls?: boolean } = {},
): Promise<TestRedisCluster> => {
  const { password } = options;
  const auth = password === undefined ? [] : ['--requirepass', password, '--masterauth', password];
  const ports = await clusterPorts(masters);
  const dirs = await Promise.all(ports.map(() => tempDir()));
  const certs = options.tls ? await makeCertificates(dirs[0]!.path) : undefined;
  const ca = certs ? await readFile(certs.ca) : undefined;
  const tlsArgs = (port: number): string[] =>
    certs
      ? ['--port', '0', '--tls-port', String(port), '--tls-cluster', 'yes']
          .concat(['--tls-auth-clients', 'no', '--tls-cert-file', certs.cert])
          .concat(['--tls-key-file', certs.key, '--tls-ca-cert-file', certs.ca])
      : [];
  const children: ChildProcess[] = [];
  const clients = new Map<number, Redis>();
  const close = async (): Promise<void> => {
    for (const client of clients.values()) client.disconnect();
    await Promise.all(children.map((c) => stopProcess(c, 'SIGKILL')));
    await Promise.all(dirs.map((d) => d.remove()));
  };
  try {
    for (const [i, port] of ports.entries())
      children.push(
        await spawnRedis(port, dirs[i]!.path, [
          '--cluster-enabled',
          'yes',
          '--cluster-config-file',
          'nodes.conf',
          '--cluster-node-timeout',
          '2000',
          ...auth,
          ...tlsArgs(port),
        ]),
      );
    await run(
      'redis-cli',
      [
        ...(password === undefined ? [] : ['-a', password, '--no-auth-warning']),
        ...(certs ? ['--tls', '--cacert', certs.ca] : []),
        '--cluster',
        'create',
        ...ports.map((p) => `127.0.0.1:${p}`),
        '--cluster-replicas',
        '0',
        '--cluster-yes',
      ],
      { timeout: 30_000 },
    );
    const master = (port: number): Redis => {
      let client = clients.get(port);
      if (!client) {
        client = new Redis({
          host: '127.0.0.1',
          port,
          ...(password === undefined ? {} : { password }),
          ...(ca ? { tls: { ca } } : {}),
        });
        clients.set(port, client);
      }
      return client;
    };
    // Every master agrees the cluster is up (all slots served) before a node connects.
    await waitFor(
      async () => {
        for (const port of ports) {
          const info = await master(port).cluster('INFO');
          if (!String(info).includes('cluster_state:ok')) return false;
        }
        return true;
      },
      'the Redis Cluster to be ok on every master',
      20_000,
      100,
    );
    const urlOf = (port: number): string =>
      `${certs ? 'rediss' : 'redis'}://${password === undefined ? '' : `:${encodeURIComponent(password)}@`}127.0.0.1:${port}`;
    const ownerOf = async (slot: number): Promise<number> => {
      const ranges = (await master(ports[0]!).cluster('SLOTS')) as unknown as Array<
        [number, number, [string, number, ...unknown[]]]
      >;
      const range = ranges.find(([start, end]) => slot >= start && slot <= end);
      if (!range) throw new Error(`slot ${slot} is served by no master`);
      return Number(range[2][1]);
    };
    const moveSlot = async (slot: number, toPort: number): Promise<void> => {
      const fromPort = await ownerOf(slot);
      if (fromPort === toPort) return;
      const from = master(fromPort);
      const to = master(toPort);
      const fromId = String(await from.cluster('MYID'));
      const toId = String(await to.cluster('MYID'));
      await to.cluster('SETSLOT', slot, 'IMPORTING', fromId);
      await from.cluster('SETSLOT', slot, 'MIGRATING', toId);
      for (let round = 0; round < 100; round++) {
        const keys = (await from.cluster('GETKEYSINSLOT', slot, 100)) as string[];
        if (keys.length === 0) break;
        const auth = password === undefined ? [] : ['AUTH', password];
        await from.call('MIGRATE', '127.0.0.1', toPort, '', 0, 5000, ...auth, 'KEYS', ...keys);
      }
      for (const port of ports) await master(port).cluster('SETSLOT', slot, 'NODE', toId);
    };
    return {
      ports,
      url: urlOf(ports[0]!),
      urlOf,
      ...(certs ? { caFile: certs.ca } : {}),
      master,
      ownerOf,
      moveSlot,
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
};
