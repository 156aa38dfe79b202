import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { createPool, withTransaction } from '@agora/db';
import { createTestDatabase, type TestDatabase } from '@agora/db/testing';
import { isBusError } from '../src/errors.js';
import type { Delivery, SubscriptionSpec, TransportMessage } from '../src/transport.js';
import { createPostgresTransport, type PostgresTransport } from '../src/transports/postgres/index.js';

let db: TestDatabase;
let admin: pg.Pool;
const open: PostgresTransport[] = [];

beforeAll(async () => {
  db = await createTestDatabase(inject('databaseUrl'));
  admin = createPool({ url: db.url, schema: 'bus', max: 2 });
});

afterEach(async () => {
  await Promise.all(open.splice(0).map((transport) => transport.close()));
});

afterAll(async () => {
  await admin.end();
  await db.drop();
});

function transport(pollIntervalMs = 1_000): PostgresTransport {
  const created = createPostgresTransport({ url: db.url, pollIntervalMs, closeGraceMs: 200 });
  open.push(created);
  return created;
}

function topicName(): string {
  return `t.${randomUUID()}`;
}

function message(id: string, key?: string, body = `body-${id}`): TransportMessage {
  return { id, ...(key === undefined ? {} : { key }), headers: { 'content-type': 'text/plain' }, body };
}

function subscription(topic: string, overrides: Partial<SubscriptionSpec> = {}): SubscriptionSpec {
  return {
    topic,
    group: 'g',
    maxInFlight: 4,
    visibilityTimeoutMs: 5_000,
    redelivery: { maxAttempts: 3, backoffMs: () => 0 },
    ...overrides,
  };
}

async function until(check: () => boolean | Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

async function count(sql: string, params: unknown[]): Promise<number> {
  const { rows } = await admin.query<{ n: number }>(`select count(*)::int as n from ${sql}`, params);
  return rows[0]?.n ?? 0;
}

describe('postgres transport: publish', () => {
  it('rejects an undeclared topic, a message too large and (onFull reject) a full topic by code', async () => {
    const bus = transport();
    const topic = topicName();
    await expect(bus.publish(topic, [message('1')])).rejects.toSatisfy((err) => isBusError(err, 'unknown_topic'));

    await bus.declareTopic({ name: topic, maxMessageBytes: 64, maxUnacked: 2 });
    await expect(bus.publish(topic, [message('big', undefined, 'x'.repeat(100))])).rejects.toSatisfy((err) =>
      isBusError(err, 'message_too_large'),
    );
    await bus.declareGroup(topic, 'g');
    await bus.publish(topic, [message('1'), message('2')]);
    const full = await bus.publish(topic, [message('3')]).catch((err: unknown) => err);
    expect(isBusError(full, 'queue_full')).toBe(true);
    expect((full as { retryable: boolean }).retryable).toBe(true);
  });

  it('onFull wait: publish resumes when an ack makes room, and honours its signal', async () => {
    const bus = transport(5_000);
    const topic = topicName();
    await bus.declareTopic({ name: topic, maxUnacked: 1, onFull: 'wait' });
    await bus.declareGroup(topic, 'g');
    await bus.publish(topic, [message('1')]);

    const aborted = new AbortController();
    const abortedPublish = bus.publish(topic, [message('x')], { signal: aborted.signal });
    aborted.abort(new Error('gave up'));
    await expect(abortedPublish).rejects.toThrow('gave up');

    const started = Date.now();
    const waiting = bus.publish(topic, [message('2')]);
    const seen: string[] = [];
    await bus.consume(subscription(topic), async (delivery) => {
      seen.push(delivery.message.id);
    });
    await waiting;
    expect(Date.now() - started).toBeLessThan(2_000); // woken by the ack's NOTIFY, not the 5 s poll
    await until(() => seen.length === 2);
    expect(seen).toEqual(['1', '2']);
  });

  it('onFull wait: a batch larger than maxUnacked goes in a bound at a time, in order', async () => {
    const bus = transport(200);
    const topic = topicName();
    await bus.declareTopic({ name: topic, maxUnacked: 2, onFull: 'wait' });
    const seen: string[] = [];
    await bus.consume(subscription(topic), async (delivery) => {
      seen.push(delivery.message.id);
    });
    await bus.publish(topic, ['1', '2', '3', '4', '5'].map((id) => message(id)));
    await until(() => seen.length === 5);
    expect(seen).toEqual(['1', '2', '3', '4', '5']);
  });

  it('publishWithin makes messages visible only when the caller commits', async () => {
    const bus = transport();
    const topic = topicName();
    await bus.declareTopic({ name: topic });
    await bus.declareGroup(topic, 'g');
    await expect(
      withTransaction(admin, async (tx) => {
        await bus.publishWithin(tx, topic, [message('rolled-back')]);
        throw new Error('abort');
      }),
    ).rejects.toThrow('abort');
    await withTransaction(admin, (tx) => bus.publishWithin(tx, topic, [message('committed')]));
    expect((await bus.stats(topic, 'g')).pending).toBe(1);
  });
});

describe('postgres transport: consuming', () => {
  it('two competing transports on separate pools keep per-partition order and take different partitions', async () => {
    const topic = topicName();
    const a = transport(200);
    const b = transport(200);
    await a.declareTopic({ name: topic, partitions: 4 });
    await a.declareGroup(topic, 'g');
    const keys = ['k0', 'k1', 'k2', 'k3', 'k4', 'k5', 'k6', 'k7'];
    const published: TransportMessage[] = [];
    for (let i = 0; i < 80; i++) published.push(message(String(i), keys[i % keys.length]));
    await a.publish(topic, published);

    const byKey = new Map<string, string[]>();
    const active = new Map<number, number>();
    let overlap = false;
    const handled = new Set<string>();
    const handler = (who: string) => async (delivery: Delivery) => {
      const inPartition = (active.get(delivery.partition) ?? 0) + 1;
      active.set(delivery.partition, inPartition);
      if (inPartition > 1) overlap = true;
      await new Promise((resolve) => setTimeout(resolve, 2));
      active.set(delivery.partition, (active.get(delivery.partition) ?? 1) - 1);
      const key = delivery.message.key ?? '';
      byKey.set(key, [...(byKey.get(key) ?? []), delivery.message.id]);
      handled.add(`${who}:${delivery.partition}`);
    };
    // Two slots each for four partitions: neither transport can hold every partition, so both take part.
    await Promise.all([
      a.consume(subscription(topic, { maxInFlight: 2 }), handler('a')),
      b.consume(subscription(topic, { maxInFlight: 2 }), handler('b')),
    ]);
    await until(() => [...byKey.values()].reduce((n, ids) => n + ids.length, 0) === 80, 10_000);

    expect(overlap).toBe(false);
    for (const key of keys) {
      const expected = published.filter((m) => m.key === key).map((m) => m.id);
      expect(byKey.get(key)).toEqual(expected);
    }
    expect([...handled].some((h) => h.startsWith('a:'))).toBe(true);
    expect([...handled].some((h) => h.startsWith('b:'))).toBe(true);
    // Interest retention: once the only group has acked everything, nothing is held.
    await until(async () => (await count('messages where topic = $1', [topic])) === 0);
  });

  it('redelivers after the visibility timeout, and a late ack of the expired lease does not ack the redelivery', async () => {
    const bus = transport(50);
    const topic = topicName();
    await bus.declareTopic({ name: topic });
    await bus.declareGroup(topic, 'g');
    await bus.publish(topic, [message('m')]);

    const deliveries: Delivery[] = [];
    let release!: () => void;
    const stuck = new Promise<void>((resolve) => {
      release = resolve;
    });
    await bus.consume(subscription(topic, { visibilityTimeoutMs: 300, maxInFlight: 2 }), async (delivery) => {
      deliveries.push(delivery);
      if (delivery.attempt === 1) {
        await stuck; // holds the first lease past its timeout
        return;
      }
      await new Promise<void>((resolve) => delivery.signal.addEventListener('abort', () => resolve(), { once: true }));
    });
    await until(() => deliveries.length === 2);
    const [first, second] = deliveries;
    await until(() => first?.signal.aborted === true);
    expect(second?.attempt).toBe(2);
    release(); // the first handler returns: an ack with the stale token
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect((await bus.stats(topic, 'g')).pending).toBe(1);
    const { rows } = await admin.query<{ errors: { error: string; attempt: number }[] }>(
      'select errors from deliveries where topic = $1',
      [topic],
    );
    expect(rows[0]?.errors).toMatchObject([{ attempt: 1, error: 'visibility timeout of 300 ms passed' }]);
  });

  it('nack backs off per policy, then dead-letters after maxAttempts with every error', async () => {
    const bus = transport(5_000);
    const topic = topicName();
    await bus.declareTopic({ name: topic });
    await bus.declareGroup(topic, 'g');
    await bus.publish(topic, [message('poison', 'k')]);

    const times: number[] = [];
    await bus.consume(
      subscription(topic, { redelivery: { maxAttempts: 3, backoffMs: (attempt) => attempt * 150 } }),
      async (delivery) => {
        times.push(Date.now());
        throw new Error(`boom ${delivery.attempt}`);
      },
    );
    await until(async () => (await bus.stats(topic, 'g')).deadLetters === 1);
    expect(times).toHaveLength(3);
    const gaps = [times[1]! - times[0]!, times[2]! - times[1]!];
    expect(gaps[0]).toBeGreaterThanOrEqual(140);
    expect(gaps[1]).toBeGreaterThanOrEqual(290);
    expect(gaps[1]).toBeLessThan(1_500); // the consumer's own wake-up, not the 5 s poll

    const [entry] = await bus.deadLetters.list({ topic });
    expect(entry).toMatchObject({ topic, group: 'g', attempts: 3, message: { id: 'poison', key: 'k', body: 'body-poison' } });
    expect(entry?.errors.map((e) => [e.attempt, e.error])).toEqual([
      [1, 'boom 1'],
      [2, 'boom 2'],
      [3, 'boom 3'],
    ]);
    expect(Number.isNaN(Date.parse(entry?.errors[0]?.at ?? ''))).toBe(false);
    expect(await bus.stats(topic, 'g')).toEqual({ topic, group: 'g', pending: 0, inFlight: 0, deadLetters: 1 });
    expect(await count('messages where topic = $1', [topic])).toBe(0);
  });

  it('deadLetter(reason) moves at once; replay delivers again from attempt 1; purge removes', async () => {
    const bus = transport(100);
    const topic = topicName();
    await bus.declareTopic({ name: topic });
    await bus.declareGroup(topic, 'g');
    await bus.publish(topic, [message('a'), message('b')]);

    const attempts: string[] = [];
    let reject = true;
    await bus.consume(subscription(topic), async (delivery) => {
      attempts.push(`${delivery.message.id}@${delivery.attempt}`);
      if (reject) await delivery.deadLetter(`invalid ${delivery.message.id}`);
    });
    await until(async () => (await bus.stats(topic, 'g')).deadLetters === 2);
    const entries = await bus.deadLetters.list({ topic, group: 'g' });
    expect(entries.map((e) => [e.message.id, e.attempts, e.errors.map((x) => x.error)])).toEqual([
      ['a', 1, ['invalid a']],
      ['b', 1, ['invalid b']],
    ]);
    // Keyset pagination by id.
    const page2 = await bus.deadLetters.list({ topic, limit: 1, after: entries[0]!.id });
    expect(page2.map((e) => e.message.id)).toEqual(['b']);
    expect(await bus.deadLetters.get(entries[0]!.id)).toEqual(entries[0]);
    expect(await bus.deadLetters.get('999999999')).toBeUndefined();

    reject = false;
    expect(await bus.deadLetters.replay(entries[0]!.id)).toBe(true);
    expect(await bus.deadLetters.replay(entries[0]!.id)).toBe(false);
    await until(() => attempts.includes('a@1') && attempts.filter((x) => x === 'a@1').length === 2);
    await until(async () => (await bus.stats(topic, 'g')).pending === 0);
    expect(await bus.deadLetters.purge({ topic, group: 'g' })).toBe(1);
    expect(await bus.deadLetters.list({ topic })).toEqual([]);
  });

  it('retention: a message stays until every group settled it; a late earliest group is back-filled', async () => {
    const bus = transport(100);
    const topic = topicName();
    await bus.declareTopic({ name: topic });
    await bus.publish(topic, [message('before-groups')]);
    await bus.declareGroup(topic, 'g1');
    await bus.declareGroup(topic, 'late', { startFrom: 'latest' });
    await bus.publish(topic, [message('after')]);
    expect((await bus.stats(topic, 'g1')).pending).toBe(2);
    expect((await bus.stats(topic, 'late')).pending).toBe(1);

    const g1: string[] = [];
    const c1 = await bus.consume(subscription(topic, { group: 'g1' }), async (d) => {
      g1.push(d.message.id);
    });
    await until(() => g1.length === 2);
    await c1.stop();
    expect(g1).toEqual(['before-groups', 'after']);
    // 'after' is still held for the 'late' group; 'before-groups' is gone.
    const held = await admin.query<{ id: string }>('select id from messages where topic = $1 order by seq', [topic]);
    expect(held.rows.map((r) => r.id)).toEqual(['after']);

    await bus.declareGroup(topic, 'g3'); // earliest: gets what is still held
    expect((await bus.stats(topic, 'g3')).pending).toBe(1);
  });

  it('stop releases unfinished leases at once for another consumer', async () => {
    const a = transport(100);
    const b = transport(100);
    const topic = topicName();
    await a.declareTopic({ name: topic });
    await a.declareGroup(topic, 'g');
    await a.publish(topic, [message('m')]);
    let started = false;
    const consumerA = await a.consume(subscription(topic, { visibilityTimeoutMs: 60_000 }), async (delivery) => {
      started = true;
      await new Promise<void>((resolve) => delivery.signal.addEventListener('abort', () => resolve(), { once: true }));
      throw new Error('aborted');
    });
    await until(() => started);
    await consumerA.stop({ graceMs: 50 });
    const got: number[] = [];
    await b.consume(subscription(topic, { visibilityTimeoutMs: 60_000 }), async (delivery) => {
      got.push(delivery.attempt);
    });
    await until(() => got.length === 1, 2_000);
    expect(got).toEqual([1]); // a released delivery does not use up an attempt
  });

  it('LISTEN wakes a consumer well under the poll interval', async () => {
    const bus = transport(10_000);
    const publisher = transport(10_000);
    const topic = topicName();
    await bus.declareTopic({ name: topic });
    const received: number[] = [];
    await bus.consume(subscription(topic), async () => {
      received.push(Date.now());
    });
    const latencies: number[] = [];
    for (let i = 0; i < 5; i++) {
      const sent = Date.now();
      await publisher.publish(topic, [message(String(i))]);
      await until(() => received.length === i + 1, 2_000);
      latencies.push(received[i]! - sent);
    }
    console.log('LISTEN wake-up latency (ms, publish call to handler):', latencies.join(', '));
    expect(Math.max(...latencies)).toBeLessThan(500);
  });

  it('rejects operations after close with transport_closed', async () => {
    const bus = createPostgresTransport({ url: db.url });
    await bus.declareTopic({ name: topicName() });
    await bus.close();
    await expect(bus.declareTopic({ name: topicName() })).rejects.toSatisfy((err) => isBusError(err, 'transport_closed'));
  });
});
