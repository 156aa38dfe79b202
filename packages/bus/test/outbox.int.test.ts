import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { createPool, withTransaction } from '@agora/db';
import { createTestDatabase, type TestDatabase } from '@agora/db/testing';
import { createBus, type Bus } from '../src/bus.js';
import { postgresDedupStore } from '../src/idempotent.js';
import { enqueue, outboxDdl } from '../src/outbox/outbox.js';
import { createOutboxRelay, type OutboxRelay, type OutboxRelayOptions } from '../src/outbox/relay.js';
import { createPostgresTransport, type PostgresTransport } from '../src/transports/postgres/index.js';
import type { CrashConfig } from './fixtures/outbox-crash.js';
import { postCreated } from './fixtures/outbox-messages.js';
import { eventually } from './transport.conformance.js';

const FIXTURE = fileURLToPath(new URL('./fixtures/outbox-crash.ts', import.meta.url));
const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let db: TestDatabase;
let pool: pg.Pool;
let transport: PostgresTransport;
const cleanups: (() => Promise<void>)[] = [];

beforeAll(async () => {
  db = await createTestDatabase(inject('databaseUrl'));
  pool = createPool({ url: db.url, max: 20 });
  transport = createPostgresTransport({ url: db.url, pollIntervalMs: 100, closeGraceMs: 200 });
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

afterAll(async () => {
  await transport.close();
  await pool.end();
  await db.drop();
});

/** A fresh service schema (posts, counters, outbox) and topic per test. */
async function service() {
  const schema = `s_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
  const topic = `posts.${schema}`;
  await pool.query(`CREATE SCHEMA ${schema}`);
  await pool.query(`CREATE TABLE ${schema}.posts (id text PRIMARY KEY, applied int NOT NULL DEFAULT 0)`);
  await pool.query(`CREATE TABLE ${schema}.counters (key text PRIMARY KEY, n int NOT NULL)`);
  await pool.query(outboxDdl(schema));
  const PostCreated = postCreated(topic);
  const bus = createBus({ transport, source: 'social', messages: [PostCreated], topics: { [topic]: { partitions: 4 } } });
  await bus.start();
  cleanups.push(() => bus.stop(200));
  return { schema, topic, PostCreated, bus };
}

function relay(schema: string, options: Partial<OutboxRelayOptions> & { within?: boolean } = {}): OutboxRelay {
  const { within, ...rest } = options;
  const created = createOutboxRelay({
    pool,
    schema,
    transport,
    pollIntervalMs: 100,
    ...(within === true ? { publishWithin: (tx, topic, messages) => transport.publishWithin(tx, topic, messages) } : {}),
    ...rest,
  });
  cleanups.push(() => created.stop());
  return created;
}

/** Collects what `group` receives, by message id, in order. */
async function collect(bus: Bus, topic: string, type: string, group = 'collector') {
  const received: { id: string; data: { postId: string } }[] = [];
  await bus.subscribe({ topic, group, maxInFlight: 4, handlers: { [type]: async (env) => void received.push({ id: env.id, data: env.data as { postId: string } }) } });
  return received;
}

const outboxRows = async (schema: string) => (await pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${schema}.outbox`)).rows[0]?.n ?? 0;
const transportRows = async (topic: string) => (await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM bus.messages WHERE topic = $1', [topic])).rows[0]?.n ?? 0;

describe.each([
  { mode: 'transport.publish, then delete', within: false },
  { mode: 'publishWithin, one transaction', within: true },
])('outbox relay ($mode)', ({ within }) => {
  it('publishes after commit, and nothing on rollback', async () => {
    const { schema, topic, PostCreated, bus } = await service();
    const received = await collect(bus, topic, PostCreated.type);
    await relay(schema, { within }).start();

    await withTransaction(pool, async (tx) => {
      await tx.query(`INSERT INTO ${schema}.posts (id) VALUES ('p1')`);
      await enqueue(tx, schema, topic, [bus.prepare(PostCreated, { postId: 'p1' })]);
      await sleep(300); // the relay polls and is woken meanwhile: it must not see the row yet
      expect(received).toHaveLength(0);
    });
    await eventually(() => expect(received.map((r) => r.data.postId)).toEqual(['p1']), 5_000);

    await expect(
      withTransaction(pool, async (tx) => {
        await tx.query(`INSERT INTO ${schema}.posts (id) VALUES ('p2')`);
        await enqueue(tx, schema, topic, [bus.prepare(PostCreated, { postId: 'p2' })]);
        throw new Error('rolled back');
      }),
    ).rejects.toThrow('rolled back');
    await sleep(400);
    expect(received.map((r) => r.data.postId)).toEqual(['p1']);
    expect(await outboxRows(schema)).toBe(0);
  });

  it('keeps per-key order across many concurrent transactions', async () => {
    const { schema, topic, PostCreated, bus } = await service();
    const received = await collect(bus, topic, PostCreated.type);
    await relay(schema, { within, batchSize: 7 }).start();
    const keys = ['a', 'b', 'c', 'd'];
    const perKey = 15;
    await pool.query(`INSERT INTO ${schema}.counters (key, n) SELECT unnest($1::text[]), 0`, [keys]);
    // Each transaction bumps its key's aggregate row (the lock that orders one key's writes),
    // then enqueues the new value; 60 of them race on a 20-connection pool.
    await Promise.all(
      keys.flatMap((key) =>
        Array.from({ length: perKey }, () =>
          withTransaction(pool, async (tx) => {
            const { rows } = await tx.query<{ n: number }>(`UPDATE ${schema}.counters SET n = n + 1 WHERE key = $1 RETURNING n`, [key]);
            await sleep(Math.random() * 5);
            await enqueue(tx, schema, topic, [bus.prepare(PostCreated, { postId: `${key}:${rows[0]!.n}` }, { key })]);
          }),
        ),
      ),
    );
    await eventually(() => expect(received).toHaveLength(keys.length * perKey), 10_000);
    for (const key of keys) {
      const seen = received.map((r) => r.data.postId).filter((id) => id.startsWith(`${key}:`));
      expect(seen).toEqual(Array.from({ length: perKey }, (_, i) => `${key}:${i + 1}`));
    }
    expect(new Set(received.map((r) => r.id)).size).toBe(received.length);
  });
});

describe('outbox relay: rows committing during a round', () => {
  it('does not delete a lower-seq row that committed while the round was publishing', async () => {
    const { schema, topic, PostCreated, bus } = await service();
    const received = await collect(bus, topic, PostCreated.type);
    // A takes seq 1 and stays open; B takes seq 2 and commits; the round sees only B.
    const slow = await pool.connect();
    await slow.query('BEGIN');
    await enqueue(slow, schema, topic, [bus.prepare(PostCreated, { postId: 'slow' })]);
    await withTransaction(pool, (tx) => enqueue(tx, schema, topic, [bus.prepare(PostCreated, { postId: 'fast' })]));
    let commitSlow: Promise<unknown> | undefined;
    const hooked = createOutboxRelay({
      pool,
      schema,
      transport: {
        ...transport,
        publish: async (t, messages) => {
          await transport.publish(t, messages);
          commitSlow ??= slow.query('COMMIT'); // A commits before the round deletes
          await commitSlow;
        },
      },
    });
    expect(await hooked.flush()).toBe(1);
    slow.release();
    expect(await outboxRows(schema)).toBe(1); // A's row is still there...
    expect(await hooked.flush()).toBe(1); // ...and the next round publishes it
    await eventually(() => expect(received.map((r) => r.data.postId).sort()).toEqual(['fast', 'slow']), 5_000);
  });

  it('with publishWithin, publishes nothing and deletes nothing when a publish of the round fails', async () => {
    const { schema, topic, PostCreated, bus } = await service();
    await transport.declareGroup(topic, 'g');
    await withTransaction(pool, async (tx) => {
      await enqueue(tx, schema, topic, [bus.prepare(PostCreated, { postId: 'ok' })]);
      await enqueue(tx, schema, 'no.such.topic', [bus.prepare(PostCreated, { postId: 'lost' })]);
    });
    await expect(relay(schema, { within: true }).flush()).rejects.toMatchObject({ code: 'unknown_topic' });
    expect(await transportRows(topic)).toBe(0);
    expect(await outboxRows(schema)).toBe(2);
  });
});

describe('outbox relay: one active per schema', () => {
  it('runs one relay while the other stands by, and the other takes over when the first stops', async () => {
    const { schema, topic, PostCreated, bus } = await service();
    const received = await collect(bus, topic, PostCreated.type);
    const published: string[] = [];
    const first = relay(schema, { onPublished: () => void published.push('first') });
    const second = relay(schema, { onPublished: () => void published.push('second') });
    await first.start();
    await second.start(); // resolves at once, standing by
    await eventually(() => expect([first.active, second.active].filter(Boolean)).toHaveLength(1), 5_000);
    const [active, standby] = first.active ? [first, second] : [second, first];
    const activeName = first.active ? 'first' : 'second';

    for (let i = 0; i < 5; i++) await withTransaction(pool, (tx) => enqueue(tx, schema, topic, [bus.prepare(PostCreated, { postId: `before-${i}` })]));
    await eventually(() => expect(received).toHaveLength(5), 5_000);
    expect(new Set(published)).toEqual(new Set([activeName]));
    expect(standby.active).toBe(false);

    await active.stop();
    expect(active.active).toBe(false);
    await eventually(() => expect(standby.active).toBe(true), 5_000);
    await withTransaction(pool, (tx) => enqueue(tx, schema, topic, [bus.prepare(PostCreated, { postId: 'after' })]));
    await eventually(() => expect(received.map((r) => r.data.postId)).toContain('after'), 5_000);
    expect(published.at(-1)).toBe(activeName === 'first' ? 'second' : 'first');
    expect(received).toHaveLength(6);
  });

  it('stops cleanly while standing by', async () => {
    const { schema } = await service();
    const first = relay(schema);
    const second = relay(schema);
    await first.start();
    await eventually(() => expect(first.active).toBe(true), 5_000);
    await second.start();
    await sleep(250);
    await second.stop();
    expect(second.active).toBe(false);
    expect(first.active).toBe(true);
  });
});

/** Runs the crash fixture; resolves with how it ended (it is meant to SIGKILL itself). */
function runFixture(config: CrashConfig): Promise<{ signal: string | null; code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE, JSON.stringify(config)], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('error', reject);
    child.once('exit', (code, signal) => resolve({ code, signal, output }));
  });
}

describe('outbox: crashes', () => {
  /** The consumer of the crash tests: counts deliveries, applies once through the dedup store. */
  async function applier(bus: Bus, schema: string, topic: string, type: string) {
    const dedup = postgresDedupStore(pool, schema);
    const deliveries: string[] = [];
    await bus.subscribe({
      topic,
      group: 'applier',
      handlers: {
        [type]: async (env) => {
          deliveries.push(env.id);
          const { postId } = env.data as { postId: string };
          await dedup.once('applier', env.id, async (tx) => void (await tx.query(`UPDATE ${schema}.posts SET applied = applied + 1 WHERE id = $1`, [postId])));
        },
      },
    });
    const applied = async (postId: string) => (await pool.query<{ applied: number }>(`SELECT applied FROM ${schema}.posts WHERE id = $1`, [postId])).rows[0]?.applied;
    return { deliveries, applied };
  }

  it('publishes a row committed by a process killed before its relay ran, once, after restart', async () => {
    const { schema, topic, PostCreated, bus } = await service();
    await transport.declareGroup(topic, 'applier');
    const run = await runFixture({ url: db.url, schema, topic, mode: 'commit-then-die', postId: 'p1' });
    expect(run.signal, run.output).toBe('SIGKILL');
    expect(await outboxRows(schema)).toBe(1);
    expect(await transportRows(topic)).toBe(0);

    const { deliveries, applied } = await applier(bus, schema, topic, PostCreated.type);
    await relay(schema, { within: true }).start(); // the restarted service's relay
    await eventually(async () => expect(await applied('p1')).toBe(1), 5_000);
    await sleep(300);
    expect(deliveries).toHaveLength(1);
    expect(await outboxRows(schema)).toBe(0);
  });

  it('with publishWithin, a relay killed after publishing publishes nothing: the restart publishes once', async () => {
    const { schema, topic, PostCreated, bus } = await service();
    await transport.declareGroup(topic, 'applier');
    await pool.query(`INSERT INTO ${schema}.posts (id) VALUES ('p1')`);
    const message = bus.prepare(PostCreated, { postId: 'p1' });
    await withTransaction(pool, (tx) => enqueue(tx, schema, topic, [message]));

    const run = await runFixture({ url: db.url, schema, topic, mode: 'die-after-publish', within: true });
    expect(run.signal, run.output).toBe('SIGKILL');
    // The publish and the delete were one transaction; the kill rolled back both.
    await eventually(async () => expect(await transportRows(topic)).toBe(0), 5_000);
    expect(await outboxRows(schema)).toBe(1);

    const { deliveries, applied } = await applier(bus, schema, topic, PostCreated.type);
    await relay(schema, { within: true }).start();
    await eventually(async () => expect(await applied('p1')).toBe(1), 5_000);
    await sleep(300);
    expect(deliveries).toEqual([message.id]);
    expect(await outboxRows(schema)).toBe(0);
  });

  it('without publishWithin, a relay killed after publishing publishes twice after restart, and the idempotent consumer applies once', async () => {
    const { schema, topic, PostCreated, bus } = await service();
    await transport.declareGroup(topic, 'applier');
    await pool.query(`INSERT INTO ${schema}.posts (id) VALUES ('p1')`);
    const message = bus.prepare(PostCreated, { postId: 'p1' });
    await withTransaction(pool, (tx) => enqueue(tx, schema, topic, [message]));

    const run = await runFixture({ url: db.url, schema, topic, mode: 'die-after-publish', within: false });
    expect(run.signal, run.output).toBe('SIGKILL');
    expect(await transportRows(topic)).toBe(1); // published...
    expect(await outboxRows(schema)).toBe(1); // ...and not deleted

    const { deliveries, applied } = await applier(bus, schema, topic, PostCreated.type);
    await relay(schema).start();
    await eventually(() => expect(deliveries).toHaveLength(2), 5_000);
    expect(deliveries).toEqual([message.id, message.id]); // at-least-once
    expect(await applied('p1')).toBe(1); // exactly once in effect
    expect(await outboxRows(schema)).toBe(0);
  });
});
