/**
 * `owner` functions on the Redis backplane, with separate node processes and a
 * real redis-server: calls sent to any node run on the document's primary
 * (forwarded over the backplane), under a lease whose token fences every
 * write, so a 30-seat show sells exactly 30 seats — also when the primary is
 * paused (SIGSTOP) mid-run, another node takes the lease over, and the paused
 * node resumes (SIGCONT) with a batch it computed under its old lease: that
 * write is refused (FENCED) and changes nothing.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { rank } from '../src/cluster/placement.js';
import { nodeDoc } from './helpers/cluster.js';
import { sample, scrape } from './helpers/metrics.js';
import type { RedisNode, RedisNodes, TestRedis } from './helpers/redis.js';
import { startRedisFixture } from './helpers/redis-fixture.js';
import { sleep, waitFor } from './helpers/wait.js';

const FUNCTIONS = fileURLToPath(new URL('../../test/fixtures/owner', import.meta.url));
const CAPACITY = 30;
const BOOKINGS = 45;

interface Answer {
  readonly status: number;
  readonly body: { ok?: boolean; seat?: number; error?: { code: string } };
  readonly replayed: boolean;
}

const invoke = async (url: string, input: unknown, key: string): Promise<Answer> => {
  const res = await fetch(`${url}/v1/functions/book/invoke`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'idempotency-key': key },
    body: JSON.stringify(input),
    // A paused node answers nothing: give up on it and retry elsewhere (same key).
    signal: AbortSignal.timeout(4000),
  });
  return {
    status: res.status,
    body: (await res.json()) as Answer['body'],
    replayed: res.headers.get('idempotent-replayed') === 'true',
  };
};

interface Booking {
  readonly key: string;
  readonly answer: Answer;
  /** Error codes of the attempts that failed before (retried with the same key). */
  readonly retried: string[];
}

/** Books with one idempotency key, retrying on 503s and timeouts at the next node. */
const book = async (
  nodes: readonly RedisNode[],
  first: number,
  key: string,
  input: Record<string, unknown>,
): Promise<Booking> => {
  const retried: string[] = [];
  const deadline = Date.now() + 90_000;
  for (let attempt = 0; attempt < 60 && Date.now() < deadline; attempt++) {
    const node = nodes[(first + attempt) % nodes.length]!;
    try {
      const answer = await invoke(node.url, input, key);
      if (answer.status === 200) return { key, answer, retried };
      assert.equal(answer.status, 503, `${key}: ${JSON.stringify(answer.body)}`);
      retried.push(answer.body.error?.code ?? '503');
    } catch (err) {
      if ((err as Error).name !== 'TimeoutError') throw err;
      retried.push('timeout');
    }
    await sleep(200);
  }
  throw new Error(`${key} did not book within its attempts: ${retried.join(', ')}`);
};

/** The primary of `doc` over `ids` (placement.ts), as every node computes it. */
const primaryOf = (doc: string, ids: readonly string[]): string => rank(doc, ids)[0]!;

const ownerStatus = async (url: string): Promise<{ leasesHeld: number; callsWaiting: number }> => {
  const body = (await (await fetch(`${url}/v1/cluster`)).json()) as {
    owner?: { leasesHeld: number; callsWaiting: number };
  };
  if (!body.owner) throw new Error('the node reports no owner leases');
  return body.owner;
};

/** Asserts exactly seats 1..CAPACITY were sold, each once, and the rest sold out. */
const assertSoldExactly = (bookings: readonly Booking[]): void => {
  const sold = bookings.filter((b) => b.answer.body.ok === true);
  const seats = sold.map((b) => b.answer.body.seat!).sort((a, b) => a - b);
  assert.deepEqual(
    seats,
    Array.from({ length: CAPACITY }, (_, i) => i + 1),
    'seats 1..30, each once',
  );
  assert.equal(bookings.length - sold.length, BOOKINGS - CAPACITY, 'the rest sold out');
};

/** Waits until every node holds exactly CAPACITY bookings with distinct seats. */
const waitReplicasSold = async (nodes: readonly RedisNode[], show: string): Promise<void> => {
  await waitFor(
    async () => {
      for (const node of nodes) {
        const seats = (await nodeDoc(node.url, `shows/${show}`))?.getMap<number>('bookings');
        if (seats?.size !== CAPACITY || new Set(seats.values()).size !== CAPACITY) return false;
      }
      return true;
    },
    `every node to hold exactly ${CAPACITY} bookings of ${show}`,
    20_000,
    100,
  );
  for (const node of nodes) {
    const seats = (await nodeDoc(node.url, `shows/${show}`))!.getMap<number>('bookings');
    assert.equal(seats.size, CAPACITY, `${node.id} holds ${CAPACITY} bookings`);
  }
};

describe('owner functions on redis', () => {
  let redis: TestRedis;
  let cluster: RedisNodes;
  const ids = ['n1', 'n2', 'n3'];

  before(async () => {
    // A batch paused mid-run must finish after the pause, not time out (the pause can be long on a loaded machine).
    ({ redis, cluster } = await startRedisFixture(3, [
      '--functions',
      FUNCTIONS,
      '--max-function-timeout-ms',
      '300000',
    ]));
  });

  after(async () => {
    for (const node of cluster?.nodes ?? [])
      if (node.node.child.exitCode === null) node.node.child.kill('SIGCONT');
    await cluster?.close();
    await redis?.close();
  });

  it('sells exactly 30 of 45 concurrent bookings spread over 3 nodes; a retried key books once', async () => {
    const show = 'premiere';
    const input = (i: number) => ({ show, customer: `c${i}`, capacity: CAPACITY });
    const bookings = await Promise.all(
      Array.from({ length: BOOKINGS }, (_, i) =>
        book(cluster.nodes, i % 3, `premiere-${i}`, input(i)),
      ),
    );
    assertSoldExactly(bookings);

    // Every key again, at another node: the first answer, replayed, nothing booked twice.
    const again = await Promise.all(
      Array.from({ length: BOOKINGS }, (_, i) =>
        book(cluster.nodes, (i + 1) % 3, `premiere-${i}`, input(i)),
      ),
    );
    again.forEach((b, i) => {
      assert.deepEqual(b.answer.body, bookings[i]!.answer.body, b.key);
      assert.equal(b.answer.replayed, true, `${b.key} is a replay`);
    });
    await waitReplicasSold(cluster.nodes, show);

    const primary = primaryOf(`shows/${show}`, ids);
    const forwarded = await Promise.all(
      cluster.nodes.map(async (n) =>
        sample(await scrape(n.url), 'stateweave_owner_calls_forwarded_total{outcome="ok"}'),
      ),
    );
    cluster.nodes.forEach((n, i) =>
      n.id === primary
        ? assert.equal(forwarded[i], 0, 'the primary runs its calls itself')
        : assert.ok(forwarded[i]! > 0, `${n.id} forwarded its calls to the primary`),
    );
    const holders = await Promise.all(cluster.nodes.map((n) => ownerStatus(n.url)));
    assert.deepEqual(
      holders.map((h) => h.leasesHeld),
      cluster.nodes.map((n) => (n.id === primary ? 1 : 0)),
      'only the primary holds the lease',
    );
  });

  it('sells exactly 30 when the primary is paused mid-run past its lease, and refuses its stale write', async () => {
    const show = 'paused';
    const doc = `shows/${show}`;
    const primary = primaryOf(doc, ids);
    const victim = cluster.nodes.find((n) => n.id === primary)!;
    const others = cluster.nodes.filter((n) => n !== victim);
    const input = (i: number, spinMs = 40) => ({
      show,
      customer: `p${i}`,
      capacity: CAPACITY,
      spinMs,
    });
    const early = await Promise.all(
      Array.from({ length: 10 }, (_, i) => book(cluster.nodes, i % 3, `paused-${i}`, input(i))),
    );
    assert.ok(early.every((b) => b.answer.body.ok === true));

    // The primary is idle now. One booking that computes for 6 s goes to it first, and the
    // rest (40 ms each) to every node: 2.5 s later the primary is inside that batch.
    let answered = 0;
    const rest = Array.from({ length: BOOKINGS - 10 }, (_, j) =>
      book(
        cluster.nodes,
        j === 0 ? cluster.nodes.indexOf(victim) : j % 3,
        `paused-${j + 10}`,
        input(j + 10, j === 0 ? 6000 : 40),
      ).then((b) => {
        answered++;
        return b;
      }),
    );
    await sleep(2500);
    assert.equal(answered, 0, 'everything waits behind the slow booking');
    victim.node.child.kill('SIGSTOP');
    const pausedAt = Date.now();
    let pausedMs = 0;
    try {
      // Another node takes the lease over once the paused one's has expired.
      await waitFor(
        async () =>
          (await Promise.all(others.map((n) => ownerStatus(n.url)))).some((s) => s.leasesHeld > 0),
        'another node to take the lease over',
        30_000,
        100,
      ).catch(async (err: Error) => {
        const seen = await Promise.all(
          others.map(async (n) => (await fetch(`${n.url}/v1/cluster`)).json()),
        );
        throw new Error(`${err.message}; answered ${answered}; ${JSON.stringify(seen)}`);
      });
    } finally {
      victim.node.child.kill('SIGCONT');
      pausedMs = Date.now() - pausedAt;
    }
    const late = await Promise.all(rest);
    const bookings = [...early, ...late];
    assertSoldExactly(bookings);
    await waitReplicasSold(cluster.nodes, show);

    const victimMetrics = await scrape(victim.url);
    const fenced = sample(victimMetrics, 'stateweave_owner_fenced_writes_total');
    assert.ok(
      fenced >= 1,
      `the paused node's stale write was refused (${fenced}; paused ${pausedMs} ms; ${victimMetrics
        .split('\n')
        .filter((l) => l.startsWith('stateweave_function_invocations_total'))
        .join(' ')})`,
    );
    const retried = bookings.flatMap((b) => b.retried);
    console.log(
      `# owner on redis: primary ${primary} paused for ${pausedMs} ms; ${fenced} stale write(s) refused; retries: ${JSON.stringify(countOf(retried))}`,
    );
  });
});

const countOf = (codes: readonly string[]): Record<string, number> =>
  Object.fromEntries([...new Set(codes)].map((c) => [c, codes.filter((x) => x === c).length]));
