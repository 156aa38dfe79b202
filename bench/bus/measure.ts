// End-to-end queue throughput: publish N messages, time until the last one is handled and
// acknowledged. The harness's `compare` times one `op` at a time, which does not fit a queue
// (publishing and consuming overlap, and "done" is the last ack, not the last call), so this
// measures rounds of N messages per contender, interleaved, and reports in the harness's shape.
import { ratioRows, type Result } from '../harness.js';

/** A queue under test: `setup` once, then `round(n)` publishes n messages and resolves when all n were acked. */
export interface QueueContender {
  readonly name: string;
  setup(): Promise<void>;
  round(n: number): Promise<void>;
  close(): Promise<void>;
}

export interface QueueComparison {
  readonly title: string;
  readonly ours: QueueContender;
  readonly peers: readonly QueueContender[];
  /** Messages per round. */
  readonly messages: number;
  readonly rounds?: number;
  readonly targets?: Readonly<Record<string, number>>;
  /** For a case without a peer: a row for this absolute target (msgs/s), as a ratio target of 1. */
  readonly absoluteTarget?: number;
}

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const SCALE = Number(process.env.BENCH_BUS_SCALE ?? 1);

async function timed(contender: QueueContender, n: number): Promise<number> {
  const started = performance.now();
  await contender.round(n);
  return (n / (performance.now() - started)) * 1000;
}

/** Messages/s, median of the rounds; ours and the peers alternate order every round. */
export async function compareQueues(c: QueueComparison): Promise<Result> {
  const all = [c.ours, ...c.peers];
  const n = Math.max(100, Math.round(c.messages * SCALE));
  const rounds = c.rounds ?? ROUNDS;
  const samples = new Map<string, number[]>(all.map((x) => [x.name, []]));
  try {
    for (const contender of all) await contender.setup();
    for (const contender of all) await timed(contender, Math.max(100, Math.round(n / 4))); // warm up
    for (let round = 0; round < rounds; round++) {
      for (const contender of round % 2 === 0 ? all : [...all].reverse()) samples.get(contender.name)!.push(await timed(contender, n));
    }
  } finally {
    for (const contender of all) await contender.close().catch((err: unknown) => console.error(`closing ${contender.name} failed`, err));
  }
  if (process.env.BENCH_VERBOSE) for (const [name, xs] of samples) console.log(`  ${c.title} / ${name}: ${xs.map((x) => Math.round(x)).join(', ')}`);
  const rows = ratioRows(c, samples);
  const ours = rows[0]!.opsPerSecond;
  if (c.absoluteTarget !== undefined) {
    rows.push({ name: `target ${c.absoluteTarget.toLocaleString('en-US')}/s`, opsPerSecond: c.absoluteTarget, ratio: ours / c.absoluteTarget, target: 1, met: ours >= c.absoluteTarget });
  }
  return { title: `${c.title} (${n.toLocaleString('en-US')} msgs/round, ${rounds} rounds; ops/s = messages/s)`, rows };
}

/** Resolves when `count()` reaches `n`; the contender calls `check()` after each ack. */
export class Countdown {
  private acked = 0;
  private goal = Number.POSITIVE_INFINITY;
  private resolve: (() => void) | undefined;

  /** Starts a round: resolves once n more acks arrived. */
  expect(n: number): Promise<void> {
    this.acked = 0;
    this.goal = n;
    return new Promise((resolve) => {
      this.resolve = resolve;
    });
  }

  ack(k = 1): void {
    this.acked += k;
    if (this.acked >= this.goal && this.resolve !== undefined) {
      const resolve = this.resolve;
      this.resolve = undefined;
      resolve();
    }
  }
}

/** 1 KiB of text: the payload of every message, for every contender. */
export const PAYLOAD = 'x'.repeat(1024);
