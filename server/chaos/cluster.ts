/**
 * Chaos clusters: `stateweave serve` processes on fixed free ports of
 * 127.0.0.1, peered with each other, each with its own data directory and, if
 * given, its own environment (a skewed clock). Nodes are stopped by pid.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { clusterArgs, freePorts } from '../test/helpers/cluster.js';
import { tempDir, type ChildNode } from '../test/helpers/node.js';
import { spawnNode, stopChild } from '../test/helpers/node.js';

export interface ChaosNode {
  readonly id: string;
  readonly port: number;
  readonly dataDir: string;
  readonly url: string;
  readonly wsUrl: string;
  child: ChildNode;
}

export interface ChaosCluster {
  readonly nodes: ChaosNode[];
  /** kill -9 node `i` and wait for it to end. */
  kill(i: number): Promise<void>;
  /** Starts node `i` again on its port and data, with `env` if given (else as before). */
  restart(i: number, env?: NodeJS.ProcessEnv): Promise<ChaosNode>;
  /**
   * Writes what every process of every node printed (restarts included) into a
   * fresh temp directory and returns its path: a failed scenario's evidence.
   */
  saveLogs(label: string): Promise<string>;
  close(): Promise<void>;
}

export interface ChaosClusterOptions {
  readonly count: number;
  readonly extraArgs?: readonly string[];
  /** Environment of node `i`. @default this process's */
  readonly envOf?: (i: number) => NodeJS.ProcessEnv;
  /** Data directory of node `i`. @default a fresh temp dir */
  readonly dataDirOf?: (i: number) => string;
}

export const startChaosCluster = async (options: ChaosClusterOptions): Promise<ChaosCluster> => {
  const ports = await freePorts(options.count);
  const temps = await Promise.all(ports.map(() => tempDir()));
  const envs = ports.map((_, i) => options.envOf?.(i) ?? process.env);
  const specs = ports.map((port, i) => ({
    id: `n${i + 1}`,
    port,
    dataDir: options.dataDirOf?.(i) ?? temps[i]!.path,
    peers:
      options.count > 1 ? ports.filter((p) => p !== port).map((p) => `ws://127.0.0.1:${p}`) : [],
  }));
  const spawnOne = async (i: number): Promise<ChaosNode> => {
    const spec = specs[i]!;
    const args =
      options.count > 1
        ? [...clusterArgs(spec.id, spec.peers), ...(options.extraArgs ?? [])]
        : [...(options.extraArgs ?? [])];
    const child = await spawnNode(spec.dataDir, args, spec.port, envs[i]);
    lives[i]!.push(child);
    return {
      id: spec.id,
      port: spec.port,
      dataDir: spec.dataDir,
      url: child.url,
      wsUrl: child.wsUrl,
      child,
    };
  };
  const nodes: ChaosNode[] = [];
  /** Every process each node ran, oldest first: a killed one's output is evidence too. */
  const lives: ChildNode[][] = specs.map(() => []);
  const close = async (): Promise<void> => {
    await Promise.all(nodes.map((n) => stopChild(n.child, 'SIGKILL')));
    await Promise.all(temps.map((t) => t.remove()));
  };
  try {
    for (let i = 0; i < specs.length; i++) nodes.push(await spawnOne(i));
  } catch (err) {
    await close();
    throw err;
  }
  return {
    nodes,
    async kill(i) {
      await stopChild(nodes[i]!.child, 'SIGKILL');
    },
    async restart(i, env) {
      if (env) envs[i] = env;
      const fresh = await spawnOne(i);
      nodes[i] = fresh;
      return fresh;
    },
    async saveLogs(label) {
      const dir = await mkdtemp(join(tmpdir(), `stateweave-chaos-${label}-`));
      await Promise.all(
        specs.map((spec, i) =>
          writeFile(
            join(dir, `${spec.id}.log`),
            lives[i]!.map(
              (c, life) => `--- process ${life + 1} (pid ${c.child.pid})\n${c.output()}`,
            ).join('\n'),
          ),
        ),
      );
      return dir;
    },
    close,
  };
};
