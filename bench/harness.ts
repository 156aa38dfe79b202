/**
 * A small side-by-side benchmark harness: each case runs ours and its peers in the same
 * process, interleaved over several rounds (so drift in CPU frequency or GC hits all of them
 * alike), and reports the median throughput and the ratio ours / peer.
 */
export interface Contender {
  readonly name: string;
  /** Runs one operation. */
  readonly op: () => Promise<unknown> | unknown;
}

export interface Comparison {
  readonly title: string;
  readonly ours: Contender;
  readonly peers: readonly Contender[];
  /** Operations in flight at once (1 = sequential). */
  readonly concurrency?: number;
  /** For the report: the ratio to each peer that counts as the target being met. */
  readonly targets?: Readonly<Record<string, number>>;
}

export interface Result {
  readonly title: string;
  readonly rows: { name: string; opsPerSecond: number; ratio?: number; target?: number; met?: boolean }[];
}

const ROUND_MS = Number(process.env.BENCH_ROUND_MS ?? 400);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);

async function opsPerSecond(contender: Contender, concurrency: number, ms: number): Promise<number> {
  let done = 0;
  const end = performance.now() + ms;
  const worker = async () => {
    while (performance.now() < end) {
      // 64 operations between clock reads keeps the clock out of the measurement.
      for (let i = 0; i < 64; i++) await contender.op();
      done += 64;
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  return (done / (performance.now() - started)) * 1000;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export async function compare(c: Comparison): Promise<Result> {
  const all = [c.ours, ...c.peers];
  const concurrency = c.concurrency ?? 1;
  for (const contender of all) await opsPerSecond(contender, concurrency, ROUND_MS / 2); // warm up
  const samples = new Map<string, number[]>(all.map((x) => [x.name, []]));
  for (let round = 0; round < ROUNDS; round++) {
    for (const contender of round % 2 === 0 ? all : [...all].reverse()) {
      samples.get(contender.name)!.push(await opsPerSecond(contender, concurrency, ROUND_MS));
    }
  }
  return { title: c.title, rows: ratioRows(c, samples) };
}

/** The rows of a comparison from its samples: medians, and each peer's ratio against its target. */
export function ratioRows(
  c: { readonly ours: { readonly name: string }; readonly peers: readonly { readonly name: string }[]; readonly targets?: Readonly<Record<string, number>> },
  samples: ReadonlyMap<string, number[]>,
): Result['rows'] {
  const ours = median(samples.get(c.ours.name)!);
  return [
    { name: c.ours.name, opsPerSecond: ours },
    ...c.peers.map((p) => {
      const theirs = median(samples.get(p.name)!);
      const ratio = ours / theirs;
      const target = c.targets?.[p.name];
      return { name: p.name, opsPerSecond: theirs, ratio, ...(target === undefined ? {} : { target, met: ratio >= target }) };
    }),
  ];
}

export function report(results: readonly Result[]): string {
  const lines: string[] = [];
  for (const r of results) {
    lines.push(`\n${r.title}`);
    for (const row of r.rows) {
      const ops = `${Math.round(row.opsPerSecond).toLocaleString('en-US').padStart(12)} ops/s`;
      const ratio = row.ratio === undefined ? '' : `  ours/${row.name} = ${row.ratio.toFixed(2)}x`;
      const target = row.target === undefined ? '' : `  (target >= ${row.target}x: ${row.met ? 'met' : 'MISSED'})`;
      lines.push(`  ${row.name.padEnd(28)}${ops}${ratio}${target}`);
    }
  }
  return lines.join('\n');
}
