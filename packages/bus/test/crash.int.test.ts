/**
 * Crash test of the durable transports (postgres, redis-streams, nats). Per transport: the test
 * process publishes N numbered messages (keys `k0..k{K-1}`, each key's seqs 1, 2, ...) in
 * batches, while 3 consumer processes (fixtures/crash-consumer.ts) apply each message's effect
 * through `postgresDedupStore`, and the test SIGKILLs a random consuming process at random
 * moments and puts a replacement in its place, until every effect is in. Then: every message
 * was applied exactly once (count = distinct = N, the dedup marks too), each key's effects are
 * its seqs 1..n in commit order (the effect refuses any seq but last + 1, so a gap would mean
 * an order break or a lost message), nothing is dead-lettered, nothing is left pending.
 *
 * Sizes: see CASES. BUS_CRASH_MESSAGES overrides every transport's count (50000: the issue's
 * full run, minutes per transport) and BUS_CRASH_DEADLINE_S the time allowed to apply them; BUS_CRASH_SEED replays
 * the kill schedule of a failed run.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { Redis } from 'ioredis';
import type pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { createPool } from '@agora/db';
import { createTestDatabase, type TestDatabase } from '@agora/db/testing';
import type { Transport, TransportMessage } from '../src/transport.js';
import { crashMessage, crashTransport, type CrashConsumerConfig, type CrashTransportKind } from './fixtures/crash-shared.js';

const FIXTURE = fileURLToPath(new URL('./fixtures/crash-consumer.ts', import.meta.url));
const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const positive = (value: string | undefined): number | undefined => {
  const n = Number(value ?? '');
  return Number.isInteger(n) && n > 0 ? n : undefined;
};
const override = positive(process.env.BUS_CRASH_MESSAGES);

/**
 * Default sizes: what each transport applies in about a minute while being killed, on two
 * cores (measured, with another test run sharing them: postgres ~85 messages/s, nats ~140/s,
 * redis-streams ~220/s). The issue's 50,000 does not fit the two-minute bound on such a
 * machine for any of them; run it with BUS_CRASH_MESSAGES=50000 BUS_CRASH_DEADLINE_S=1200.
 */
const CASES: { kind: CrashTransportKind; messages: number }[] = [
  { kind: 'postgres', messages: override ?? 4_000 },
  { kind: 'redis-streams', messages: override ?? 10_000 },
  { kind: 'nats', messages: override ?? 5_000 },
];

const KEYS = 100;
const PARTITIONS = 8;
const CONSUMERS = 3;
/** Warm standbys: started, connected, not consuming; one takes a killed consumer's place at once. */
const SPARES = 3;
const MAX_IN_FLIGHT = 16;
const VISIBILITY_TIMEOUT_MS = 1_500;
const POLL_INTERVAL_MS = 200;
const BATCH = 500;
/** Most messages published and not yet applied: beyond, the producer waits (a steady producer rather than one dump). */
const WINDOW = 2_000;
/**
 * Between kills. Each replacement costs a cold start of node + tsx (about a CPU-second) to
 * keep a standby ready: faster than this, restarts eat the two cores and little is consumed.
 */
const KILL_EVERY_MS: readonly [number, number] = [500, 1_500];
/** All effects in by then, or the test fails (and says how far it got). */
const DEADLINE_MS = (positive(process.env.BUS_CRASH_DEADLINE_S) ?? 90) * 1_000;
const GROUP = 'effects';

/** Seeded, so a failing run can be replayed with BUS_CRASH_SEED. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

interface ConsumerProcess {
  readonly child: ChildProcessWithoutNullStreams;
  /** Loaded and connected, waiting for `go`. */
  standby: boolean;
  /** Told to consume. */
  active: boolean;
  /** Consuming. */
  ready: boolean;
  killed: boolean;
  exited: boolean;
  /** The tail of its output, for the failure report. */
  output: string;
}

let db: TestDatabase;
let pool: pg.Pool;
const children = new Set<ConsumerProcess>();
const cleanups: (() => Promise<void>)[] = [];

beforeAll(async () => {
  db = await createTestDatabase(inject('databaseUrl'));
  pool = createPool({ url: db.url, max: 4 });
});

async function killAll(): Promise<void> {
  const exits: Promise<void>[] = [];
  for (const proc of children) {
    if (proc.exited) continue;
    exits.push(new Promise((resolve) => proc.child.once('exit', () => resolve())));
    proc.killed = true;
    proc.child.kill('SIGKILL');
  }
  await Promise.all(exits);
  children.clear();
}

afterEach(async () => {
  await killAll();
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch((err: unknown) => console.warn('crash test cleanup:', err));
});

afterAll(async () => {
  await killAll();
  await pool?.end();
  await db?.drop();
});

/**
 * The consumer processes of a run: CONSUMERS active ones, and SPARES warm standbys (started,
 * not consuming), so that a killed consumer is replaced at once rather than after a cold start
 * of node and tsx (seconds on two busy cores).
 */
class Fleet {
  /** Exits nobody asked for, with the process's output. */
  readonly unexpected: string[] = [];

  constructor(private readonly config: CrashConsumerConfig) {}

  private get live(): ConsumerProcess[] {
    return [...children].filter((c) => !c.killed && !c.exited);
  }

  /** Active consumers that have started consuming. */
  get running(): ConsumerProcess[] {
    return this.live.filter((c) => c.ready);
  }

  /** Activates standbys until CONSUMERS are active, and starts processes until SPARES more are on the way. */
  topUp(): void {
    for (const standby of this.live.filter((c) => c.standby && !c.active)) {
      if (this.live.filter((c) => c.active).length >= CONSUMERS) break;
      standby.active = true;
      standby.child.stdin.write('go\n');
    }
    const live = this.live;
    const wanted = CONSUMERS + SPARES - live.length;
    for (let i = 0; i < wanted; i++) this.spawn();
  }

  kill(victim: ConsumerProcess): void {
    victim.killed = true;
    victim.child.kill('SIGKILL');
    this.topUp();
  }

  private spawn(): void {
    const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE, JSON.stringify(this.config)], {
      cwd: REPO_ROOT,
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: false,
    });
    const proc: ConsumerProcess = { child, standby: false, active: false, ready: false, killed: false, exited: false, output: '' };
    const onOutput = (chunk: Buffer) => {
      proc.output = (proc.output + chunk.toString()).slice(-4_000);
      if (!proc.ready && proc.output.includes('ready\n')) proc.ready = true;
      if (!proc.standby && proc.output.includes('standby\n')) {
        proc.standby = true;
        this.topUp();
      }
    };
    child.stdout.on('data', onOutput);
    child.stderr.on('data', onOutput);
    child.stdin.on('error', () => undefined); // EPIPE once it is dead
    child.once('exit', (code, signal) => {
      proc.exited = true;
      children.delete(proc);
      if (!proc.killed) this.unexpected.push(`pid ${child.pid} exited by itself (${code ?? signal}):\n${proc.output}`);
    });
    children.add(proc);
  }
}

async function prepareSchema(schema: string): Promise<void> {
  await pool.query(`CREATE SCHEMA ${schema}`);
  // No unique constraint on message_id: a second effect of a message must show, not be retried away.
  await pool.query(`CREATE TABLE ${schema}.effects (id bigserial PRIMARY KEY, message_id text NOT NULL, key text NOT NULL, seq int NOT NULL, pid int NOT NULL)`);
  await pool.query(`CREATE TABLE ${schema}.key_state (key text PRIMARY KEY, last_seq int NOT NULL)`);
  await pool.query(`CREATE TABLE ${schema}.events (pid int, kind text, message_id text, attempt int, detail text, at timestamptz DEFAULT clock_timestamp())`);
  await pool.query(`INSERT INTO ${schema}.key_state (key, last_seq) SELECT 'k' || i, 0 FROM generate_series(0, $1::int - 1) AS i`, [KEYS]);
}

/** Where each transport keeps this run apart, and how it is cleaned up. */
function transportPlace(kind: CrashTransportKind, tag: string): { url: string; prefix: string; cleanup: () => Promise<void> } {
  switch (kind) {
    case 'postgres':
      // Its own schema (`bus`) in this file's database, dropped with it.
      return { url: db.url, prefix: '', cleanup: async () => undefined };
    case 'redis-streams': {
      const url = inject('redisUrl');
      const prefix = `bus-crash:${tag}:`;
      return {
        url,
        prefix,
        cleanup: async () => {
          const admin = new Redis(url, { maxRetriesPerRequest: 1 });
          try {
            for await (const keys of admin.scanStream({ match: `${prefix}*`, count: 1000 })) {
              if ((keys as string[]).length > 0) await admin.del(...(keys as string[]));
            }
          } finally {
            await admin.quit();
          }
        },
      };
    }
    case 'nats': {
      const url = inject('natsUrl');
      const prefix = `crash-${tag}`;
      return {
        url,
        prefix,
        cleanup: async () => {
          const nc = await connect({ servers: url });
          try {
            const jsm = await jetstreamManager(nc);
            for await (const name of jsm.streams.names()) if (name.startsWith(`${prefix}_`)) await jsm.streams.delete(name);
          } finally {
            await nc.close();
          }
        },
      };
    }
  }
}

async function effectsCount(schema: string): Promise<number> {
  return (await pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${schema}.effects`)).rows[0]?.n ?? 0;
}

/** Duplicates dropped and out-of-order seqs refused so far, as the consumers recorded them. */
async function eventSummary(schema: string): Promise<string> {
  const { rows } = await pool.query<{ kind: string; n: number; max_attempt: number }>(
    `SELECT kind, count(*)::int AS n, max(attempt)::int AS max_attempt FROM ${schema}.events GROUP BY kind ORDER BY kind`,
  );
  return `events: ${rows.map((e) => `${e.kind} ${e.n} (max attempt ${e.max_attempt})`).join(', ') || 'none'}`;
}

describe.each(CASES)('crash test: $kind, $messages messages, consumers SIGKILLed', ({ kind, messages: total }) => {
  it(
    'processes every message exactly once, in per-key order',
    async () => {
      const seed = positive(process.env.BUS_CRASH_SEED) ?? Math.floor(Math.random() * 2 ** 31);
      const rand = random(seed);
      const tag = randomBytes(5).toString('hex');
      const schema = `crash_${tag}`;
      const topic = `crash.${tag}`;
      await prepareSchema(schema);
      const place = transportPlace(kind, tag);
      cleanups.push(place.cleanup);
      const config: CrashConsumerConfig = {
        kind,
        transportUrl: place.url,
        prefix: place.prefix,
        effectsUrl: db.url,
        schema,
        topic,
        group: GROUP,
        partitions: PARTITIONS,
        maxInFlight: MAX_IN_FLIGHT,
        visibilityTimeoutMs: VISIBILITY_TIMEOUT_MS,
        pollIntervalMs: POLL_INTERVAL_MS,
      };

      const producer: Transport = crashTransport(config);
      cleanups.push(() => producer.close());
      await producer.declareTopic({ name: topic, partitions: PARTITIONS });
      await producer.declareGroup(topic, GROUP); // before the first publish: the group gets every message

      const fleet = new Fleet(config);
      fleet.topUp();
      const started = Date.now();
      const deadline = started + DEADLINE_MS;
      let published = 0;
      let applied = 0;
      let done = false;

      // The producer: batches, one after another (so each key's seqs go out in order).
      let publishError: unknown;
      const producing = (async () => {
        for (let from = 0; from < total; from += BATCH) {
          while (published - applied >= WINDOW && !done) await sleep(50);
          if (done) return;
          const batch: TransportMessage[] = [];
          for (let i = from; i < Math.min(total, from + BATCH); i++) {
            const { id, key, seq } = crashMessage(i, KEYS);
            batch.push({ id, key, headers: {}, body: JSON.stringify({ key, seq }) });
          }
          await producer.publish(topic, batch);
          published += batch.length;
        }
      })().catch((err: unknown) => {
        publishError = err;
      });

      // The killer: a random consuming process, at a random moment; a standby takes its place.
      let kills = 0;
      const killing = (async () => {
        while (!done && Date.now() < deadline) {
          await sleep(KILL_EVERY_MS[0] + rand() * (KILL_EVERY_MS[1] - KILL_EVERY_MS[0]));
          if (done) break;
          const running = fleet.running;
          const victim = running[Math.floor(rand() * running.length)];
          if (victim === undefined) continue; // none consuming yet: nothing worth killing
          fleet.kill(victim);
          kills++;
        }
      })();

      let lastReport = started;
      while (Date.now() < deadline && publishError === undefined && fleet.unexpected.length === 0) {
        applied = await effectsCount(schema);
        if (applied >= total) break;
        if (Date.now() - lastReport > 10_000) {
          lastReport = Date.now();
          const seconds = ((lastReport - started) / 1000).toFixed(0);
          console.log(`[crash ${kind}] ${seconds} s: published ${published}, applied ${applied}, kills ${kills}, consuming ${fleet.running.length}; ${await eventSummary(schema)}`);
        }
        await sleep(250);
      }
      const allAppliedMs = Date.now() - started;
      done = true;
      await killing;
      await producing;
      expect(publishError).toBeUndefined();
      expect(fleet.unexpected).toEqual([]);
      expect(applied, `applied ${applied} of ${total} in ${DEADLINE_MS} ms (published ${published}, kills ${kills}, seed ${seed})`).toBe(total);

      // The survivors settle what they hold (an effect commits before its ack).
      let stats = await producer.stats(topic, GROUP);
      while (stats.pending > 0 && Date.now() < deadline + 15_000) {
        await sleep(250);
        stats = await producer.stats(topic, GROUP);
      }
      await killAll();

      const totals = (
        await pool.query<{ n: number; distinct_ids: number; marks: number }>(
          `SELECT (SELECT count(*)::int FROM ${schema}.effects) AS n,
                  (SELECT count(DISTINCT message_id)::int FROM ${schema}.effects) AS distinct_ids,
                  (SELECT count(*)::int FROM ${schema}.processed_messages WHERE group_name = $1) AS marks`,
          [GROUP],
        )
      ).rows[0];
      expect(totals).toEqual({ n: total, distinct_ids: total, marks: total });

      // Each effect is the one its message id stands for (m<i>: key k<i % K>, seq floor(i / K) + 1).
      const mismatched = await pool.query(
        `SELECT message_id, key, seq FROM ${schema}.effects
          WHERE key <> 'k' || (substr(message_id, 2)::int % $1)
             OR seq <> substr(message_id, 2)::int / $1 + 1
          LIMIT 5`,
        [KEYS],
      );
      expect(mismatched.rows).toEqual([]);

      // Per-key order: in commit order, each key's seqs are exactly 1..n, and n is all of them.
      const orderBreaks = await pool.query(
        `SELECT key, seq, pos FROM (
           SELECT key, seq, row_number() OVER (PARTITION BY key ORDER BY id) AS pos FROM ${schema}.effects
         ) e WHERE seq <> pos LIMIT 5`,
      );
      expect(orderBreaks.rows).toEqual([]);
      const perKey = await pool.query<{ key: string; n: number; last_seq: number }>(
        `SELECT s.key, count(e.id)::int AS n, s.last_seq FROM ${schema}.key_state s LEFT JOIN ${schema}.effects e USING (key) GROUP BY s.key, s.last_seq`,
      );
      expect(perKey.rows).toHaveLength(KEYS);
      for (const row of perKey.rows) {
        const expected = Math.floor(total / KEYS) + (Number(row.key.slice(1)) < total % KEYS ? 1 : 0);
        expect({ key: row.key, n: row.n, last: row.last_seq }).toEqual({ key: row.key, n: expected, last: expected });
      }

      expect(await producer.deadLetters.list({ topic, group: GROUP })).toEqual([]);
      expect(stats).toMatchObject({ pending: 0, inFlight: 0, deadLetters: 0 });

      const writers = (await pool.query<{ n: number }>(`SELECT count(DISTINCT pid)::int AS n FROM ${schema}.effects`)).rows[0]?.n ?? 0;
      console.log(
        `[crash ${kind}] ${total} messages, all applied in ${(allAppliedMs / 1000).toFixed(1)} s (${Math.round(total / (allAppliedMs / 1000))}/s); ` +
          `${kills} consumers SIGKILLed, ${writers} processes applied effects; seed ${seed}; ${await eventSummary(schema)}`,
      );
      // Kills happened while there was work: the test tested something.
      expect(kills).toBeGreaterThan(0);
    },
    DEADLINE_MS + 30_000,
  );
});
