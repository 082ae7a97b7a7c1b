/**
 * Fuzzing machinery shared by the hostile-input tests: byte mutations, seeds that
 * can be replayed, a structural view of a Y.Doc for comparisons, and a watchdog
 * that runs a property in a worker thread so that even a synchronous hang (a
 * decoder looping on crafted input) is caught, reported with its input, and
 * killed instead of wedging the test run.
 */
import { Worker } from 'node:worker_threads';
import fc from 'fast-check';
import * as lib0prng from 'lib0/prng';
import * as Y from 'yjs';

// ---------------------------------------------------------------- seeds

/**
 * The seed a suite runs with: its fixed `fallback`, or STATEWEAVE_FUZZ_SEED
 * (every failure prints the seed) to replay a run or to explore new ones.
 */
export const fuzzSeed = (fallback: number): number => {
  const raw = process.env.STATEWEAVE_FUZZ_SEED;
  if (raw === undefined || raw === '') return fallback;
  const seed = Number(raw);
  if (!Number.isSafeInteger(seed))
    throw new Error(`STATEWEAVE_FUZZ_SEED must be an integer, got ${JSON.stringify(raw)}`);
  return seed;
};

export const hex = (bytes: Uint8Array): string =>
  Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');

/** A deterministic PRNG (lib0's) for traffic that is not a fast-check property. */
export const prng = (seed: number): (() => number) => {
  const generator = lib0prng.create(seed);
  return () => lib0prng.real53(generator);
};

// ---------------------------------------------------------------- mutations

/** One edit of a byte string. Positions are taken modulo the current length. */
export type Mutation =
  | { readonly kind: 'flip'; readonly at: number; readonly bit: number }
  | { readonly kind: 'set'; readonly at: number; readonly value: number }
  | { readonly kind: 'truncate'; readonly at: number }
  | { readonly kind: 'insert'; readonly at: number; readonly bytes: Uint8Array }
  | { readonly kind: 'delete'; readonly at: number; readonly count: number }
  | {
      readonly kind: 'duplicate';
      readonly from: number;
      readonly count: number;
      readonly at: number;
    }
  /** Replaces the varint that starts at `at` with `value` (a length or count set huge). */
  | { readonly kind: 'varint'; readonly at: number; readonly value: number }
  /** Replaces the varint at `at` with `count` continuation bytes (0xff…), optionally terminated. */
  | {
      readonly kind: 'overlong';
      readonly at: number;
      readonly count: number;
      readonly terminated: boolean;
    };

const HUGE = [
  0x7f,
  0x80,
  0xff,
  0x3fff,
  0x4000,
  0xffff,
  0x10000,
  8 * 1024 * 1024 + 1,
  2 ** 31 - 1,
  2 ** 31,
  2 ** 32 - 1,
  2 ** 32,
  2 ** 35,
  2 ** 53 - 1,
];

const position = fc.nat({ max: 1 << 20 });

export const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  {
    arbitrary: fc.record({
      kind: fc.constant('flip' as const),
      at: position,
      bit: fc.integer({ min: 0, max: 7 }),
    }),
    weight: 4,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant('set' as const),
      at: position,
      value: fc.oneof(fc.constantFrom(0, 1, 0x7f, 0x80, 0xff), fc.nat({ max: 255 })),
    }),
    weight: 2,
  },
  { arbitrary: fc.record({ kind: fc.constant('truncate' as const), at: position }), weight: 1 },
  {
    arbitrary: fc.record({
      kind: fc.constant('insert' as const),
      at: position,
      bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }),
    }),
    weight: 2,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant('delete' as const),
      at: position,
      count: fc.integer({ min: 1, max: 8 }),
    }),
    weight: 2,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant('duplicate' as const),
      from: position,
      count: fc.integer({ min: 1, max: 32 }),
      at: position,
    }),
    weight: 1,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant('varint' as const),
      at: position,
      value: fc.oneof(fc.constantFrom(...HUGE), fc.nat()),
    }),
    weight: 3,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant('overlong' as const),
      at: position,
      count: fc.integer({ min: 1, max: 12 }),
      terminated: fc.boolean(),
    }),
    weight: 1,
  },
);

export const mutationsArb = (maxLength = 4): fc.Arbitrary<Mutation[]> =>
  fc.array(mutationArb, { minLength: 1, maxLength });

const writeVarUint = (value: number): number[] => {
  const out: number[] = [];
  let n = value;
  while (n > 0x7f) {
    out.push(0x80 | (n % 128));
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
};

/** Length of the varint starting at `at` (it may run to the end of the bytes). */
const varintLength = (bytes: number[], at: number): number => {
  let i = at;
  while (i < bytes.length && bytes[i]! >= 0x80) i++;
  return Math.min(i + 1, bytes.length) - at;
};

/** Applies the mutations in order to a copy of `input`. */
export const mutate = (input: Uint8Array, mutations: readonly Mutation[]): Uint8Array => {
  const bytes = [...input];
  const at = (p: number, inclusiveEnd = false): number =>
    p % (bytes.length + (inclusiveEnd ? 1 : 0) || 1);
  for (const m of mutations) {
    switch (m.kind) {
      case 'flip':
        if (bytes.length > 0) bytes[at(m.at)]! ^= 1 << m.bit;
        break;
      case 'set':
        if (bytes.length > 0) bytes[at(m.at)] = m.value;
        break;
      case 'truncate':
        bytes.length = at(m.at, true);
        break;
      case 'insert':
        bytes.splice(at(m.at, true), 0, ...m.bytes);
        break;
      case 'delete':
        if (bytes.length > 0) bytes.splice(at(m.at), m.count);
        break;
      case 'duplicate': {
        if (bytes.length === 0) break;
        const from = at(m.from);
        const slice = bytes.slice(from, from + m.count);
        bytes.splice(at(m.at, true), 0, ...slice);
        break;
      }
      case 'varint':
      case 'overlong': {
        const start = at(m.at, true);
        const replacement =
          m.kind === 'varint'
            ? writeVarUint(m.value)
            : [...new Array<number>(m.count).fill(0xff), ...(m.terminated ? [0x01] : [])];
        bytes.splice(start, start < bytes.length ? varintLength(bytes, start) : 0, ...replacement);
        break;
      }
    }
  }
  return Uint8Array.from(bytes);
};

// ---------------------------------------------------------------- comparing documents

type Dumped = unknown;

const dumpContent = (content: Y.Item['content']): Dumped[] => {
  if (content instanceof Y.ContentType) return [dumpType(content.type)];
  if (content instanceof Y.ContentFormat)
    return [{ format: content.key, value: content.value as unknown }];
  if (content instanceof Y.ContentDoc) return [{ subdoc: content.doc?.guid ?? null }];
  if (content instanceof Y.ContentBinary) return [{ binary: hex(content.content) }];
  return content.getContent() as Dumped[];
};

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- any shared type
function dumpType(type: Y.AbstractType<any>): Dumped {
  const map: Record<string, Dumped[]> = {};
  for (const [key, item] of [...type._map].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (!item.deleted) map[key] = dumpContent(item.content);
  }
  const list: Dumped[] = [];
  for (let item = type._start; item !== null; item = item.right)
    if (!item.deleted) list.push(...dumpContent(item.content));
  // No class name: a root type is typed only where someone asked for it.
  return { map, list };
}

/**
 * A Y.Doc as comparable data: its snapshot (state vector + delete set, encoded in
 * sorted order) and the visible content of every root type, independent of how
 * items happen to be split. Two docs with equal views hold the same state.
 */
export const docView = (doc: Y.Doc): { snapshot: string; content: string } => ({
  snapshot: hex(Y.encodeSnapshot(Y.snapshot(doc))),
  content: JSON.stringify(
    [...doc.share]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([name, type]) => [name, dumpType(type)])
      .filter(([, dumped]) => {
        const { map, list } = dumped as { map: object; list: unknown[] };
        return Object.keys(map).length > 0 || list.length > 0; // an empty root exists only where it was asked for
      }),
  ),
});

// ---------------------------------------------------------------- the watchdog

/** What a suite reports back from its worker. */
export interface SuiteResult {
  readonly failed: boolean;
  /** Cases run, including shrinking runs after a failure. */
  readonly runs: number;
  readonly ms: number;
  readonly maxCaseMs: number;
  readonly report: string;
  readonly stats: Readonly<Record<string, number>>;
}

export interface WorkerJob {
  readonly fuzzSuite: string;
  readonly seed: number;
  readonly numRuns: number;
  readonly shared: SharedArrayBuffer;
}

const INPUT_OFFSET = 32;
const INPUT_CAPACITY = 512 * 1024;

/**
 * Worker side: `begin` records the input of the case about to run (so the main
 * thread can print it if the case never returns), `end` its duration.
 */
export const caseClock = (shared: SharedArrayBuffer) => {
  const ctrl = new Int32Array(shared, 0, 4);
  const time = new Float64Array(shared, 16, 1);
  const input = new Uint8Array(shared, INPUT_OFFSET, INPUT_CAPACITY);
  const encoder = new TextEncoder();
  let started = 0;
  let maxCaseMs = 0;
  return {
    begin(describe: string): void {
      this.describe(describe);
      started = performance.now();
      time[0] = Date.now();
      Atomics.add(ctrl, 0, 1);
      Atomics.store(ctrl, 2, 1);
    },
    /** Replaces the recorded input of the running case (once its bytes are known). */
    describe(text: string): void {
      const { written } = encoder.encodeInto(text, input);
      Atomics.store(ctrl, 1, written);
    },
    end(): void {
      Atomics.store(ctrl, 2, 0);
      maxCaseMs = Math.max(maxCaseMs, performance.now() - started);
    },
    get maxCaseMs() {
      return maxCaseMs;
    },
  };
};

/**
 * Main side: runs `fuzzSuite` of `module` in a worker. If one case runs longer
 * than `caseTimeoutMs` the worker is terminated and the result names the input.
 */
export const runInWorker = (
  module: URL,
  job: Omit<WorkerJob, 'shared'>,
  { caseTimeoutMs = 2000, totalTimeoutMs = 45_000 } = {},
): Promise<SuiteResult> =>
  new Promise<SuiteResult>((resolve, reject) => {
    const shared = new SharedArrayBuffer(INPUT_OFFSET + INPUT_CAPACITY);
    const ctrl = new Int32Array(shared, 0, 4);
    const time = new Float64Array(shared, 16, 1);
    const started = Date.now();
    const worker = new Worker(module, { workerData: { ...job, shared } satisfies WorkerJob });
    let done = false;
    const finish = (result: SuiteResult | Error): void => {
      if (done) return;
      done = true;
      clearInterval(watchdog);
      void worker.terminate();
      if (result instanceof Error) reject(result);
      else resolve(result);
    };
    const stuck = (why: string): SuiteResult => {
      const length = Atomics.load(ctrl, 1);
      const input = new TextDecoder().decode(new Uint8Array(shared, INPUT_OFFSET, length).slice());
      return {
        failed: true,
        runs: Atomics.load(ctrl, 0),
        ms: Date.now() - started,
        maxCaseMs: Date.now() - (time[0] ?? 0),
        report:
          `${job.fuzzSuite}: ${why} (seed ${job.seed}; replay with STATEWEAVE_FUZZ_SEED=${job.seed})\n` +
          `input of case #${Atomics.load(ctrl, 0)}${length >= INPUT_CAPACITY ? ' (truncated)' : ''}:\n${input}`,
        stats: {},
      };
    };
    const watchdog = setInterval(() => {
      const running = Atomics.load(ctrl, 2) === 1;
      if (running && Date.now() - (time[0] ?? 0) > caseTimeoutMs)
        finish(stuck(`one case ran longer than ${caseTimeoutMs} ms`));
      else if (Date.now() - started > totalTimeoutMs)
        finish(stuck(`the suite ran longer than ${totalTimeoutMs} ms`));
    }, 25);
    worker.once('message', (result: SuiteResult) => finish(result));
    worker.once('error', (err) => finish(err));
    worker.once('exit', (code) =>
      finish(new Error(`fuzz worker for ${job.fuzzSuite} exited with ${code} before reporting`)),
    );
  });

/** Formats fast-check's run details as a SuiteResult (in the worker). */
export const toSuiteResult = (
  name: string,
  details: fc.RunDetails<[unknown]>,
  started: number,
  maxCaseMs: number,
  stats: Record<string, number>,
  format: (input: unknown) => string,
): SuiteResult => {
  let report = `${name}: ${details.numRuns} cases, seed ${details.seed}`;
  if (details.failed) {
    const error =
      details.errorInstance instanceof Error
        ? (details.errorInstance.stack ?? details.errorInstance.message)
        : String(details.errorInstance);
    report =
      `${name}: failed after ${details.numRuns} cases and ${details.numShrinks} shrinks` +
      `${details.interrupted ? ' (shrinking cut short by the time limit)' : ''}\n` +
      `seed ${details.seed}, path ${JSON.stringify(details.counterexamplePath)}; replay with STATEWEAVE_FUZZ_SEED=${details.seed}\n` +
      `counterexample: ${details.counterexample ? format(details.counterexample[0]) : '(none)'}\n` +
      `error: ${error}`;
  } else if (details.interrupted) {
    report = `${name}: only ${details.numRuns} cases ran before the time limit (seed ${details.seed})`;
  }
  return {
    failed: details.failed || details.interrupted,
    runs: details.numRuns + details.numShrinks,
    ms: Date.now() - started,
    maxCaseMs,
    report,
    stats,
  };
};
