/**
 * Clock skew of ±5 minutes on one node of a cluster (skew-clock.ts shifts its
 * wall clock). What is documented (docs/cluster.md, docs/chaos.md) and checked:
 * - peer links: every node-to-node signature carries a timestamp accepted
 *   within 60 s, so the skewed node cannot link (both directions refuse, and
 *   the refusal names the clock skew); the others keep their link;
 * - every node keeps serving its own clients meanwhile; once the clock is right
 *   again the links come up and the replicas converge, byte-identical;
 * - tokens: each node judges `exp` by its own clock: a token with 2 minutes
 *   left is refused (TOKEN_EXPIRED) by a node 5 minutes ahead, and accepted by
 *   one 5 minutes behind and by the others.
 * - schedules: every node runs the fixture's 100 ms `tick`, and only the primary
 *   of its document runs a slot; n1 and n2, linked, run each slot once, and the
 *   skewed node, alone, runs its own slots (labelled by its clock) as a
 *   partitioned node does; they merge once it links.
 * Leases (Redis's clock) are not exercised here (docs/chaos.md says why).
 */
import { fileURLToPath } from 'node:url';
import * as Y from 'yjs';
import { mintToken } from '../src/auth/tokens.js';
import { clusterStatus } from '../test/helpers/cluster.js';
import type { Form } from './form.js';
import { startChaosCluster, type ChaosNode } from './cluster.js';
import { eventually, expect, newResult, say, sleep, type ChaosResult } from './lib.js';
import { compareReplicas } from './replicas.js';

const NAME = 'skew';
const SECRET = 'chaos-clock-skew-secret-0123456789abcdef';
const SKEW_CLOCK = fileURLToPath(new URL('./skew-clock.js', import.meta.url));
/** `tick` appends its slot time to the document `ticks` every 100 ms. */
const SCHEDULES = fileURLToPath(new URL('../../test/fixtures/triggers', import.meta.url));

const skewed = (ms: number): NodeJS.ProcessEnv => ({
  ...process.env,
  NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import=${SKEW_CLOCK}`.trim(),
  STATEWEAVE_CHAOS_CLOCK_SKEW_MS: String(ms),
});

const connectedPeers = async (node: ChaosNode): Promise<string[]> =>
  (await clusterStatus(node.url)).peers.flatMap((p) =>
    p.state === 'connected' && p.nodeId !== undefined ? [p.nodeId] : [],
  );

const patch = (node: ChaosNode, doc: string, token: string, body: unknown) =>
  fetch(`${node.url}/v1/docs/${doc}`, {
    method: 'PATCH',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });

/** The slot times the schedule has written into `ticks`, as `node` holds them. */
const ticksOn = async (node: ChaosNode, token: string): Promise<number[]> => {
  const res = await fetch(`${node.url}/v1/docs/ticks`, {
    headers: { authorization: `Bearer ${token}`, accept: 'application/octet-stream' },
    signal: AbortSignal.timeout(10_000),
  });
  if (!res.ok) return [];
  const d = new Y.Doc();
  Y.applyUpdate(d, new Uint8Array(await res.arrayBuffer()));
  const ticks = d.getArray<number>('ticks').toArray();
  d.destroy();
  return ticks;
};

const readStatus = async (node: ChaosNode, doc: string, token: string) => {
  const res = await fetch(`${node.url}/v1/docs/${doc}`, {
    headers: { authorization: `Bearer ${token}` },
    signal: AbortSignal.timeout(10_000),
  });
  const body = (await res.json().catch(() => ({}))) as { error?: { code?: string } };
  return `${res.status}${body.error?.code !== undefined ? ` ${body.error.code}` : ''}`;
};

export const clockSkew = async (form: Form): Promise<ChaosResult> => {
  const result = newResult(NAME);
  const skews = form.full ? [5 * 60_000, -5 * 60_000] : [5 * 60_000];
  const cluster = await startChaosCluster({
    count: 3,
    extraArgs: ['--auth-secret', SECRET, '--functions', SCHEDULES],
    envOf: (i) => (i === 2 ? skewed(skews[0]!) : process.env),
  });
  const [n1, n2] = cluster.nodes as [ChaosNode, ChaosNode, ChaosNode];
  const doc = 'chaos-skew';
  try {
    const longToken = await mintToken({
      secret: SECRET,
      docs: ['*'],
      rights: ['read', 'write'],
      ttl: '1h',
    });
    const shortToken = await mintToken({
      secret: SECRET,
      docs: ['*'],
      rights: ['read', 'write'],
      ttl: 120,
    });
    for (const [phase, skewMs] of skews.entries()) {
      if (phase > 0) {
        await cluster.kill(2);
        await cluster.restart(2, skewed(skewMs));
      }
      const n3 = cluster.nodes[2]!;
      const label = `${skewMs > 0 ? '+' : ''}${skewMs / 60_000} min`;
      say(NAME, `n3 at ${label}`);
      // n1 and n2 link; give n3 a few dial rounds, then it must still be alone.
      expect(
        result,
        await eventually(async () => (await connectedPeers(n1)).includes('n2'), 20_000, 200),
        `${label}: n1 and n2 linked`,
      );
      await sleep(3000);
      const n3Peers = await connectedPeers(n3);
      const seenBy = [...(await connectedPeers(n1)), ...(await connectedPeers(n2))].filter(
        (id) => id === 'n3',
      );
      result.figures[`${label}: n3 linked to`] =
        n3Peers.length === 0 ? 'nobody' : n3Peers.join(', ');
      expect(
        result,
        n3Peers.length === 0 && seenBy.length === 0,
        `${label}: the skewed node linked (${n3Peers.join(', ')})`,
      );
      const named = cluster.nodes.some((n) => n.child.output().includes('clock skew'));
      expect(result, named, `${label}: a refusal names the clock skew`);

      // Every node serves its own clients.
      const ok1 = await patch(n1, doc, longToken, { meta: { [`n1-${phase}`]: true } });
      const ok3 = await patch(n3, doc, longToken, { meta: { [`n3-${phase}`]: true } });
      expect(
        result,
        ok1.status === 200 && ok3.status === 200,
        `${label}: writes on n1 (${ok1.status}) and n3 (${ok3.status})`,
      );

      // Schedules: the linked pair runs each slot once; nothing of n3's reaches n1.
      const from = Date.now();
      await sleep(2000);
      const onN1Ticks = await ticksOn(n1, longToken);
      const pairSlots = onN1Ticks.filter((at) => at >= from && at < from + 2000);
      const fromN3 = onN1Ticks.filter((at) => Math.abs(at - from) > 4 * 60_000).length;
      const duplicates = pairSlots.length - new Set(pairSlots).size;
      result.figures[`${label}: slots run by n1+n2 in 2 s (more than once)`] =
        `${new Set(pairSlots).size} (${duplicates})`;
      expect(result, pairSlots.length > 0, `${label}: the linked pair ran no slot in 2 s`);
      expect(result, duplicates === 0, `${label}: ${duplicates} slots ran twice on n1 and n2`);
      expect(result, fromN3 === 0, `${label}: n1 holds ${fromN3} slots of the skewed node`);

      // Tokens by each node's own clock.
      const onN1 = await readStatus(n1, doc, shortToken);
      const onN3 = await readStatus(n3, doc, shortToken);
      result.figures[`${label}: token with 2 min left on n1 / n3`] = `${onN1} / ${onN3}`;
      expect(result, onN1 === '200', `${label}: n1 accepts a token with 2 min left (${onN1})`);
      expect(
        result,
        skewMs > 0 ? onN3 === '401 TOKEN_EXPIRED' : onN3 === '200',
        `${label}: n3 answered ${onN3} to a token with 2 min left`,
      );
    }

    // The clock is right again: links come up and the replicas converge.
    await cluster.kill(2);
    const fixedAt = performance.now();
    await cluster.restart(2, process.env);
    const linked = await eventually(
      async () => (await connectedPeers(cluster.nodes[2]!)).length === 2,
      30_000,
      200,
    );
    expect(result, linked, 'n3 linked to both once its clock was right');
    result.figures['links up ms after the fixed restart'] = Math.round(performance.now() - fixedAt);
    let comparison = compareReplicas([]);
    const converged = await eventually(
      async () => {
        const replicas = await Promise.all(
          cluster.nodes.map(async (n) => {
            const res = await fetch(`${n.url}/v1/docs/${doc}`, {
              headers: { authorization: `Bearer ${longToken}`, accept: 'application/octet-stream' },
              signal: AbortSignal.timeout(10_000),
            });
            return {
              name: n.id,
              state: res.ok ? new Uint8Array(await res.arrayBuffer()) : new Uint8Array([0, 0]),
            };
          }),
        );
        comparison = compareReplicas(replicas);
        if (!comparison.identical) return false;
        const d = new Y.Doc();
        Y.applyUpdate(d, replicas[0]!.state);
        const keys = [...d.getMap('meta').keys()].length;
        d.destroy();
        return keys === 2 * skews.length;
      },
      30_000,
      250,
    );
    expect(
      result,
      converged,
      `replicas identical with every phase's writes (differing: ${comparison.differing.join(', ')})`,
    );
    // The skewed node's own slots (labelled five minutes away from real time) merged in.
    const merged = await ticksOn(n1, longToken);
    result.figures["the skewed node's slots, merged after it linked"] = merged.filter(
      (at) => Math.abs(at - Date.now()) > 4 * 60_000,
    ).length;
  } finally {
    await cluster.close();
  }
  return result;
};
