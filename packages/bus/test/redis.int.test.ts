import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, afterEach, describe, expect, inject, it } from 'vitest';
import { isBusError } from '../src/errors.js';
import { partitionOf } from '../src/partition.js';
import type { SubscriptionSpec, Transport, TransportMessage } from '../src/transport.js';
import { createTransport } from '../src/transports/index.js';
import { createRedisStreamsTransport, redisStreamsKeys, type RedisStreamsTransport } from '../src/transports/redis-streams/index.js';
import { eventually } from './transport.conformance.js';

const url = inject('redisUrl');
const prefix = `bus-int:${randomUUID()}:`;
const admin = new Redis(url, { maxRetriesPerRequest: 1 });
const opened: Transport[] = [];
const clients: Redis[] = [];

afterEach(async () => {
  await Promise.all(opened.splice(0).map((transport) => transport.close()));
  for (const client of clients.splice(0)) client.disconnect();
});

afterAll(async () => {
  for await (const keys of admin.scanStream({ match: `${prefix}*`, count: 1000 })) {
    if ((keys as string[]).length > 0) await admin.del(...(keys as string[]));
  }
  await admin.quit();
});

function open(options: Parameters<typeof createRedisStreamsTransport>[0] = {}): RedisStreamsTransport {
  const transport = createRedisStreamsTransport({ url, prefix, pollIntervalMs: 100, closeGraceMs: 500, ...options });
  opened.push(transport);
  return transport;
}

const message = (body: string, key?: string): TransportMessage => ({ id: randomUUID(), ...(key === undefined ? {} : { key }), headers: { h: body }, body });

function subscription(topic: string, group: string, overrides: Partial<SubscriptionSpec> = {}): SubscriptionSpec {
  return { topic, group, maxInFlight: 4, visibilityTimeoutMs: 30_000, redelivery: { maxAttempts: 3, backoffMs: () => 20 }, ...overrides };
}

async function streamLengths(topic: string, partitions: number): Promise<number[]> {
  const keys = redisStreamsKeys(prefix, topic);
  return Promise.all(Array.from({ length: partitions }, (_, p) => admin.xlen(keys.stream(p))));
}

describe('redis-streams transport', () => {
  it('keeps a topic in hash-tagged keys: meta, groups, a stream per partition with a consumer group each', async () => {
    const transport = open();
    const topic = `topic-${randomUUID()}`;
    await transport.declareTopic({ name: topic, partitions: 3, maxUnacked: 50, onFull: 'wait' });
    await transport.declareGroup(topic, 'billing');
    const sent = [message('a', 'k1'), message('b', 'k2'), message('c', 'k3')];
    await transport.publish(topic, sent);

    const keys = redisStreamsKeys(prefix, topic);
    expect(keys.stream(2)).toBe(`${prefix}{${topic}}:p2`);
    expect(await admin.hgetall(keys.meta)).toMatchObject({ partitions: '3', maxUnacked: '50', onFull: 'wait', 'pending:billing': '3' });
    expect(await admin.smembers(keys.groups)).toEqual(['billing']);
    expect(await admin.sismember(`${prefix}topics`, topic)).toBe(1);
    for (let p = 0; p < 3; p++) {
      expect(await admin.type(keys.stream(p))).toBe('stream');
      const groups = (await admin.xinfo('GROUPS', keys.stream(p))) as unknown[][];
      expect(groups.map((g) => g[1])).toEqual(['billing']);
    }
    const lengths = await streamLengths(topic, 3);
    for (const m of sent) expect(lengths[partitionOf(m.key, 3)]).toBeGreaterThan(0);
    expect(lengths.reduce((a, b) => a + b, 0)).toBe(3);
  });

  it('deletes entries once every group has settled them (interest retention)', async () => {
    const transport = open();
    const topic = `topic-${randomUUID()}`;
    await transport.declareTopic({ name: topic, partitions: 2 });
    await transport.declareGroup(topic, 'fast');
    await transport.declareGroup(topic, 'slow');
    await transport.publish(topic, Array.from({ length: 20 }, (_, i) => message(`m${i}`, `k${i}`)));

    let fast = 0;
    await transport.consume(subscription(topic, 'fast'), async () => void fast++);
    await eventually(() => expect(fast).toBe(20), 5_000);
    // 'slow' has not read anything: every entry is still held for it.
    expect((await streamLengths(topic, 2)).reduce((a, b) => a + b, 0)).toBe(20);

    let slow = 0;
    await transport.consume(subscription(topic, 'slow'), async () => void slow++);
    await eventually(async () => expect(await streamLengths(topic, 2)).toEqual([0, 0]), 5_000);
    expect(slow).toBe(20);
    expect(await transport.stats(topic, 'slow')).toMatchObject({ pending: 0, inFlight: 0 });
  });

  it('counts held entries against maxUnacked until the last group settles them', async () => {
    const transport = open();
    const topic = `topic-${randomUUID()}`;
    await transport.declareTopic({ name: topic, maxUnacked: 2 });
    await transport.declareGroup(topic, 'g');
    await transport.publish(topic, [message('1'), message('2')]);
    await expect(transport.publish(topic, [message('3')])).rejects.toSatisfy((err) => isBusError(err, 'queue_full'));
    let handled = 0;
    await transport.consume(subscription(topic, 'g'), async () => void handled++);
    await eventually(() => expect(handled).toBe(2), 5_000);
    await eventually(() => transport.publish(topic, [message('3')]), 5_000);
  });

  it('shares a group between two transports on separate connections, each message once, keys in order', async () => {
    const [a, b] = [open(), open()];
    const topic = `topic-${randomUUID()}`;
    await a.declareTopic({ name: topic, partitions: 4 });
    await a.declareGroup(topic, 'workers');
    const seen = new Map<string, number>();
    const perKey = new Map<string, number[]>();
    const byTransport = [0, 0];
    const handler = (i: 0 | 1) => async (d: { message: TransportMessage }) => {
      byTransport[i]! += 1;
      seen.set(d.message.id, (seen.get(d.message.id) ?? 0) + 1);
      const [key, seq] = d.message.body.split(':') as [string, string];
      perKey.set(key, [...(perKey.get(key) ?? []), Number(seq)]);
      await new Promise((resolve) => setTimeout(resolve, 1));
    };
    await a.consume(subscription(topic, 'workers'), handler(0));
    await b.consume(subscription(topic, 'workers'), handler(1));
    for (let seq = 0; seq < 15; seq++) await a.publish(topic, Array.from({ length: 8 }, (_, k) => message(`k${k}:${seq}`, `k${k}`)));

    await eventually(() => expect(seen.size).toBe(120), 10_000);
    expect([...seen.values()].every((n) => n === 1)).toBe(true);
    expect(byTransport[0]).toBeGreaterThan(0);
    expect(byTransport[1]).toBeGreaterThan(0);
    for (const seqs of perKey.values()) expect(seqs).toEqual(Array.from({ length: 15 }, (_, i) => i));
  });

  it('takes over the lease of a holder that died once its visibility timeout passed, counting the attempt', async () => {
    const dyingClient = new Redis(url, { maxRetriesPerRequest: 1 });
    clients.push(dyingClient);
    dyingClient.on('error', () => undefined);
    const dying = open({ redis: dyingClient });
    const survivor = open();
    const topic = `topic-${randomUUID()}`;
    await survivor.declareTopic({ name: topic });
    await survivor.declareGroup(topic, 'g');

    let taken = false;
    await dying.consume(subscription(topic, 'g', { visibilityTimeoutMs: 300 }), async () => {
      taken = true;
      await new Promise(() => undefined); // hangs, like a process that froze
    });
    await survivor.publish(topic, [message('orphan')]);
    await eventually(() => expect(taken).toBe(true), 5_000);
    dyingClient.disconnect(); // no release, no settle: only the lease's expiry can free it

    const attempts: number[] = [];
    await survivor.consume(subscription(topic, 'g', { visibilityTimeoutMs: 300 }), async (d) => void attempts.push(d.attempt));
    await eventually(() => expect(attempts).toEqual([2]), 5_000);
    await eventually(async () => expect((await survivor.stats(topic, 'g')).pending).toBe(0), 5_000);
  });

  it('replays a dead letter to its own group only, and forgets it once handled', async () => {
    const transport = open();
    const topic = `topic-${randomUUID()}`;
    await transport.declareTopic({ name: topic });
    await transport.declareGroup(topic, 'picky');
    await transport.declareGroup(topic, 'easy');
    let accept = false;
    const picky: string[] = [];
    const easy: string[] = [];
    await transport.consume(subscription(topic, 'picky'), async (d) => {
      if (!accept) return d.deadLetter('not now');
      picky.push(d.message.body);
    });
    await transport.consume(subscription(topic, 'easy'), async (d) => void easy.push(d.message.body));
    await transport.publish(topic, [message('x')]);
    const [dead] = await eventually(async () => {
      const list = await transport.deadLetters.list({ topic, group: 'picky' });
      expect(list).toHaveLength(1);
      return list;
    }, 5_000);
    await eventually(() => expect(easy).toEqual(['x']), 5_000);

    accept = true;
    expect(await transport.deadLetters.replay(dead!.id)).toBe(true);
    await eventually(() => expect(picky).toEqual(['x']), 5_000);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(easy).toEqual(['x']);
    await eventually(async () => expect(await streamLengths(topic, 1)).toEqual([0]), 5_000);
    expect(await transport.stats(topic, 'easy')).toMatchObject({ pending: 0, deadLetters: 0 });
    expect(await transport.stats(topic, 'picky')).toMatchObject({ pending: 0, deadLetters: 0 });
  });

  it('is what createTransport makes of a redis:// URL, and refuses a prefix with a hash tag', async () => {
    const transport = createTransport(url);
    opened.push(transport);
    expect(transport.kind).toBe('redis-streams');
    expect(() => createRedisStreamsTransport({ url, prefix: 'bus:{x}:' })).toThrow(expect.objectContaining({ code: 'invalid_option' }));
  });
});
