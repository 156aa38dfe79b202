// The bus transports end to end (publish -> handled -> acked, 1 KiB payloads), side by side
// with the job queues people would otherwise use, on the same servers in the same process.
// Targets (issue #4): redis-streams >= 2x BullMQ on the same Redis; postgres >= 1x
// graphile-worker (and pg-boss, reported) on the same PostgreSQL; memory >= 1,000,000 msgs/s.
//
// Fairness: every contender publishes in batches of PUBLISH_BATCH (Queue.addBulk,
// WorkerUtils.addJobs, PgBoss.insert, Transport.publish), sequentially, while its consumer runs;
// "concurrency" is our consumer's maxInFlight, BullMQ's and graphile-worker's worker
// concurrency, and pg-boss's fetch batch size. Our topics get `concurrency` partitions and
// unkeyed messages (spread by id), since a partition has at most one message in flight.
// Every handler does nothing but count; ours acks explicitly and counts after the ack resolved.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue, Worker } from 'bullmq';
import { Logger as GraphileLogger, makeWorkerUtils, run as runGraphile, type Runner, type WorkerUtils } from 'graphile-worker';
import { EventEmitter } from 'node:events';
import { Redis } from 'ioredis';
import pg from 'pg';
import PgBoss from 'pg-boss';
import { createMemoryTransport, createPostgresTransport, createRedisStreamsTransport, type Consumer, type Transport } from '@agora/bus';
import { EmbeddedPostgres, type DbLogger } from '@agora/db';
import { startRedisServer } from '../../test/support/redis.js';
import type { Result } from '../harness.js';
import { compareQueues, Countdown, PAYLOAD, type QueueContender } from './measure.js';

const PUBLISH_BATCH = 100;
const RUN = `${process.pid}-${Date.now().toString(36)}`;
const quiet = () => undefined;

/** Any of our transports: a topic of `concurrency` partitions, one group, one consumer. */
function ours(name: string, make: () => Transport, concurrency: number, batch = PUBLISH_BATCH): QueueContender {
  const topic = `bench.${RUN}.${name.replace(/\W+/g, '-')}.c${concurrency}`;
  const countdown = new Countdown();
  let transport: Transport | undefined;
  let consumer: Consumer | undefined;
  let seq = 0;
  return {
    name,
    async setup() {
      transport = make();
      await transport.declareTopic({ name: topic, partitions: concurrency });
      await transport.declareGroup(topic, 'bench');
      consumer = await transport.consume(
        { topic, group: 'bench', maxInFlight: concurrency, visibilityTimeoutMs: 60_000, redelivery: { maxAttempts: 3, backoffMs: () => 1_000 } },
        async (delivery) => {
          await delivery.ack();
          countdown.ack();
        },
      );
    },
    async round(n) {
      const done = countdown.expect(n);
      for (let from = 0; from < n; from += batch) {
        const messages = [];
        for (let i = from; i < Math.min(n, from + batch); i++) messages.push({ id: `m${++seq}`, headers: {}, body: PAYLOAD });
        await transport!.publish(topic, messages);
      }
      await done;
    },
    async close() {
      await consumer?.stop({ graceMs: 1_000 });
      await transport?.close();
    },
  };
}

function bullmq(url: string, concurrency: number): QueueContender {
  const name = `bench-${RUN}-c${concurrency}`;
  const countdown = new Countdown();
  let connection: Redis | undefined;
  let workerConnection: Redis | undefined;
  let queue: Queue | undefined;
  let worker: Worker | undefined;
  return {
    name: 'BullMQ',
    async setup() {
      connection = new Redis(url, { maxRetriesPerRequest: null });
      workerConnection = new Redis(url, { maxRetriesPerRequest: null });
      queue = new Queue(name, { connection });
      worker = new Worker(name, async () => undefined, { connection: workerConnection, concurrency });
      // 'completed' is emitted after the job was moved to completed (removed, here) in Redis.
      worker.on('completed', () => countdown.ack());
      await worker.waitUntilReady();
    },
    async round(n) {
      const done = countdown.expect(n);
      for (let from = 0; from < n; from += PUBLISH_BATCH) {
        const jobs = [];
        for (let i = from; i < Math.min(n, from + PUBLISH_BATCH); i++) jobs.push({ name: 'm', data: { body: PAYLOAD }, opts: { removeOnComplete: true } });
        await queue!.addBulk(jobs);
      }
      await done;
    },
    async close() {
      await worker?.close();
      await queue?.obliterate({ force: true }).catch(quiet);
      await queue?.close();
      connection?.disconnect();
      workerConnection?.disconnect();
    },
  };
}

function graphileWorker(url: string, concurrency: number): QueueContender {
  const identifier = `bench_c${concurrency}`;
  const countdown = new Countdown();
  const events = new EventEmitter();
  const logger = new GraphileLogger(() => quiet);
  let utils: WorkerUtils | undefined;
  let runner: Runner | undefined;
  let pool: pg.Pool | undefined;
  return {
    name: 'graphile-worker',
    async setup() {
      // One pool for graphile-worker (its default size, 10) with an error handler: the server stops at the end.
      pool = new pg.Pool({ connectionString: url, max: 10 });
      pool.on('error', quiet);
      pool.on('connect', (client) => client.on('error', quiet));
      utils = await makeWorkerUtils({ pgPool: pool, logger });
      await utils.migrate();
      events.on('job:complete', () => countdown.ack());
      runner = await runGraphile({ pgPool: pool, concurrency, noHandleSignals: true, logger, events, taskList: { [identifier]: async () => undefined } });
    },
    async round(n) {
      const done = countdown.expect(n);
      for (let from = 0; from < n; from += PUBLISH_BATCH) {
        const jobs = [];
        for (let i = from; i < Math.min(n, from + PUBLISH_BATCH); i++) jobs.push({ identifier, payload: { body: PAYLOAD } });
        await utils!.addJobs(jobs);
      }
      await done;
      // 'job:complete' is emitted when the completion is queued, not written: wait until it is.
      while ((await pool!.query('select 1 from graphile_worker._private_jobs limit 1')).rowCount !== 0) await new Promise((r) => setTimeout(r, 2));
    },
    async close() {
      await runner?.stop();
      await utils?.release();
      await pool?.end();
    },
  };
}

/**
 * pg-boss's own `work()` sleeps its polling interval (at least 500 ms) after every fetch that
 * took less, jobs or not, which would cap it at batchSize / 0.5 s. So it is driven here by its
 * fetch/complete API in a tight loop (5 ms sleep only when the queue is empty), its fastest use.
 */
function pgBoss(url: string, concurrency: number): QueueContender {
  const name = `bench-c${concurrency}`;
  const countdown = new Countdown();
  let boss: PgBoss | undefined;
  let closing = false;
  return {
    name: 'pg-boss',
    async setup() {
      boss = new PgBoss({ connectionString: url, schedule: false, supervise: false });
      boss.on('error', (err) => {
        if (!closing) console.error('pg-boss', err);
      });
      await boss.start();
      await boss.createQueue(name);
    },
    async round(n) {
      const done = countdown.expect(n);
      let left = n;
      const consume = (async () => {
        while (left > 0) {
          const jobs = await boss!.fetch<{ body: string }>(name, { batchSize: concurrency });
          if (jobs.length === 0) {
            await new Promise((r) => setTimeout(r, 5));
            continue;
          }
          await Promise.all(jobs.map(async () => undefined)); // the handlers
          await boss!.complete(name, jobs.map((job) => job.id));
          left -= jobs.length;
          countdown.ack(jobs.length);
        }
      })();
      for (let from = 0; from < n; from += PUBLISH_BATCH) {
        const jobs = [];
        for (let i = from; i < Math.min(n, from + PUBLISH_BATCH); i++) jobs.push({ name, data: { body: PAYLOAD } });
        await boss!.insert(jobs);
      }
      await consume;
      await done;
    },
    async close() {
      closing = true;
      await boss?.stop({ graceful: false, wait: true, close: true });
    },
  };
}

const dbLogger: DbLogger = {
  debug: quiet,
  info: quiet,
  warn: (obj: object | string, msg?: string) => console.warn('[db]', msg ?? obj),
  error: (obj: object | string, msg?: string) => console.error('[db]', msg ?? obj),
};

async function startPostgres(): Promise<{ url: string; stop: () => Promise<void> }> {
  const given = process.env.DATABASE_URL;
  if (given !== undefined && given !== '') return { url: given, stop: async () => undefined };
  const dir = await mkdtemp(join(tmpdir(), 'agora-bench-pg-'));
  // The same settings as the test database: durability off (fsync, synchronous_commit), for every contender alike.
  const server = new EmbeddedPostgres({
    dataDir: join(dir, 'data'),
    database: 'agora_bench',
    logger: dbLogger,
    settings: { fsync: 'off', synchronous_commit: 'off', full_page_writes: 'off', max_connections: 300 },
  });
  try {
    const { url } = await server.start();
    return {
      url,
      stop: async () => {
        await server.stop();
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

export async function run(): Promise<Result[]> {
  const only = process.env.BENCH_BUS_ONLY?.split(',');
  const wants = (x: string) => only === undefined || only.includes(x);
  const results: Result[] = [];

  if (wants('memory')) {
    for (const concurrency of [1, 32]) {
      results.push(
        await compareQueues({
          title: `memory transport, concurrency ${concurrency}, publish batches of 1000`,
          ours: ours('agora memory', () => createMemoryTransport(), concurrency, 1000),
          peers: [],
          messages: 100_000,
          rounds: 5,
          absoluteTarget: 1_000_000,
        }),
      );
    }
  }

  if (wants('redis')) {
    const server = process.env.REDIS_URL === undefined ? await startRedisServer() : undefined;
    const url = process.env.REDIS_URL ?? server!.url;
    try {
      for (const [concurrency, messages] of [
        [1, 5_000],
        [32, 10_000],
      ] as const) {
        results.push(
          await compareQueues({
            title: `redis-streams vs BullMQ, concurrency ${concurrency}`,
            ours: ours('agora redis-streams', () => createRedisStreamsTransport({ url, prefix: `bench:${RUN}:` }), concurrency),
            peers: [bullmq(url, concurrency)],
            messages,
            targets: { BullMQ: 2 },
          }),
        );
      }
    } finally {
      if (server !== undefined) {
        const cleanup = new Redis(url);
        await cleanup.flushall().catch(quiet);
        cleanup.disconnect();
        await server.stop();
      }
    }
  }

  if (wants('postgres')) {
    const server = await startPostgres();
    try {
      for (const [concurrency, messages] of [
        [1, 500],
        [32, 2_000],
      ] as const) {
        results.push(
          await compareQueues({
            title: `postgres vs graphile-worker and pg-boss, concurrency ${concurrency}`,
            ours: ours('agora postgres', () => createPostgresTransport({ url: server.url, logger: dbLogger }), concurrency),
            peers: [graphileWorker(server.url, concurrency), pgBoss(server.url, concurrency)],
            messages,
            targets: { 'graphile-worker': 1 },
          }),
        );
      }
    } finally {
      await server.stop();
    }
  }
  return results;
}
