import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isBusError, type BusErrorCode } from '../src/errors.js';
import { partitionOf } from '../src/partition.js';
import type { Delivery, DeliveryHandler, SubscriptionSpec, TopicSpec, Transport, TransportMessage } from '../src/transport.js';

/** One transport under test, and how to tidy up after it (drop a database, flush a server). */
export interface TransportHarness {
  readonly transport: Transport;
  cleanup(): Promise<void>;
}

export type TransportFactory = () => Promise<TransportHarness>;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Retries `fn` until it stops throwing (or rejecting), or rethrows its last error after `timeoutMs`. */
export async function eventually<T>(fn: () => T | Promise<T>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() >= deadline) throw err;
      await sleep(10);
    }
  }
}

/** The error code `promise` rejects with; fails the test if it resolves. */
async function codeOf(promise: Promise<unknown>): Promise<BusErrorCode | undefined> {
  try {
    await promise;
  } catch (err) {
    return isBusError(err) ? err.code : undefined;
  }
  throw new Error('expected a rejection');
}

function message(body: string, key?: string, headers: Record<string, string> = {}): TransportMessage {
  return key === undefined ? { id: randomUUID(), headers, body } : { id: randomUUID(), key, headers, body };
}

function messages(count: number, prefix = 'm'): TransportMessage[] {
  return Array.from({ length: count }, (_, i) => message(`${prefix}${i}`));
}

/** Keys landing in distinct partitions, one per partition (found, not hard-coded: partitionOf decides). */
function keysPerPartition(partitions: number): string[] {
  const keys: string[] = [];
  for (let i = 0; keys.length < partitions; i++) {
    const key = `key-${i}`;
    if (partitionOf(key, partitions) === keys.length) keys.push(key);
  }
  return keys;
}

/**
 * The behaviour every Transport must have. Each adapter's spec calls this with a factory
 * making a fresh transport (possibly on a shared server: every test uses its own topic and
 * group names). Time is real here; timing tests use short timeouts and poll with `eventually`.
 *
 * @param options.slow scales the timeouts (durable adapters that poll).
 * @example
 * transportConformance('memory', async () => ({ transport: createMemoryTransport(), cleanup: async () => undefined }));
 */
export function transportConformance(name: string, factory: TransportFactory, options: { slow?: boolean } = {}): void {
  const scale = options.slow === true ? 3 : 1;
  const within = 5_000 * scale;
  const visibilityMs = 400 * scale;
  const backoffMs = 50;

  describe(`${name} transport: conformance`, () => {
    let harness: TransportHarness;
    let transport: Transport;
    /** Handlers parked for a whole test are let go before the transport closes. */
    const gates: (() => void)[] = [];
    const parked = () => new Promise<void>((resolve) => gates.push(resolve));

    beforeEach(async () => {
      harness = await factory();
      transport = harness.transport;
    });
    afterEach(async () => {
      for (const open of gates.splice(0)) open();
      await transport.close();
      await harness.cleanup();
    });

    /** A fresh topic (unique name) with the given groups declared. */
    async function freshTopic(spec: Omit<TopicSpec, 'name'> = {}, groupCount = 1): Promise<{ topic: string; groups: string[] }> {
      const topic = `topic-${randomUUID()}`;
      await transport.declareTopic({ name: topic, ...spec });
      const groups = Array.from({ length: groupCount }, () => `group-${randomUUID()}`);
      for (const group of groups) await transport.declareGroup(topic, group);
      return { topic, groups };
    }

    function subscription(topic: string, group: string, overrides: Partial<SubscriptionSpec> = {}): SubscriptionSpec {
      return {
        topic,
        group,
        maxInFlight: 1,
        visibilityTimeoutMs: 30_000,
        redelivery: { maxAttempts: 3, backoffMs: () => backoffMs },
        ...overrides,
      };
    }

    const bodies = (list: readonly TransportMessage[]) => list.map((m) => m.body);

    it('shares one group between competing consumers, each message handled once', async () => {
      const { topic, groups } = await freshTopic({ partitions: 4 });
      const group = groups[0] as string;
      const counts = new Map<string, number>();
      const perConsumer = [0, 0];
      const handler =
        (consumer: 0 | 1): DeliveryHandler =>
        async (delivery) => {
          counts.set(delivery.message.id, (counts.get(delivery.message.id) ?? 0) + 1);
          perConsumer[consumer]! += 1;
          await sleep(2);
        };
      await transport.consume(subscription(topic, group, { maxInFlight: 2 }), handler(0));
      await transport.consume(subscription(topic, group, { maxInFlight: 2 }), handler(1));
      await transport.publish(topic, messages(100));

      await eventually(() => expect(counts.size).toBe(100), within);
      await eventually(async () => expect((await transport.stats(topic, group)).pending).toBe(0), within);
      expect([...counts.values()].every((n) => n === 1)).toBe(true);
      expect(perConsumer[0]).toBeGreaterThan(0);
      expect(perConsumer[1]).toBeGreaterThan(0);
    });

    it('gives every group all messages (publish/subscribe), in publish order', async () => {
      const { topic, groups } = await freshTopic({}, 2);
      const sent = messages(50);
      const seen: string[][] = [[], []];
      for (const [i, group] of groups.entries()) {
        await transport.consume(subscription(topic, group), async (d) => void seen[i]!.push(d.message.body));
      }
      await transport.publish(topic, sent);
      await eventually(() => expect(seen).toEqual([bodies(sent), bodies(sent)]), within);
    });

    it('keeps messages published before the first consume for a group declared earlier', async () => {
      const { topic, groups } = await freshTopic();
      const sent = messages(5);
      await transport.publish(topic, sent);
      const seen: string[] = [];
      await transport.consume(subscription(topic, groups[0] as string), async (d) => void seen.push(d.message.body));
      await eventually(() => expect(seen).toEqual(bodies(sent)), within);
    });

    it('keeps what is published to a topic without groups for the first group starting from earliest', async () => {
      // A publisher may start before its consumers (an outbox relay before the service that reads it).
      const { topic } = await freshTopic({}, 0);
      const sent = messages(3);
      await transport.publish(topic, sent);
      const seen: string[] = [];
      await transport.consume(subscription(topic, `group-${randomUUID()}`, { startFrom: 'earliest' }), async (d) => void seen.push(d.message.body));
      await eventually(() => expect(seen).toEqual(bodies(sent)), within);
    });

    it('handles each key in order while different keys run in parallel', async () => {
      const { topic, groups } = await freshTopic({ partitions: 4 });
      const group = groups[0] as string;
      const handled = new Map<string, number[]>();
      let running = 0;
      let mostRunning = 0;
      const handler: DeliveryHandler = async (d) => {
        running++;
        mostRunning = Math.max(mostRunning, running);
        await sleep(Math.floor(Math.random() * 4));
        const [key, seq] = d.message.body.split(':') as [string, string];
        handled.set(key, [...(handled.get(key) ?? []), Number(seq)]);
        running--;
      };
      for (let c = 0; c < 3; c++) await transport.consume(subscription(topic, group, { maxInFlight: 8 }), handler);
      for (let seq = 0; seq < 20; seq++) {
        await transport.publish(
          topic,
          Array.from({ length: 10 }, (_, k) => message(`k${k}:${seq}`, `k${k}`)),
        );
      }
      const inOrder = Array.from({ length: 20 }, (_, i) => i);
      await eventually(() => {
        expect(handled.size).toBe(10);
        for (const seqs of handled.values()) expect(seqs).toEqual(inOrder);
      }, within);
      expect(mostRunning).toBeGreaterThan(1);
    });

    it('keeps publish order for one key within and across batches', async () => {
      const { topic, groups } = await freshTopic({ partitions: 4 });
      const seen: number[] = [];
      await transport.consume(subscription(topic, groups[0] as string, { maxInFlight: 4 }), async (d) => {
        if (d.message.key === 'the-key') seen.push(Number(d.message.body));
      });
      for (let batch = 0; batch < 3; batch++) {
        const list: TransportMessage[] = [];
        for (let i = 0; i < 10; i++) {
          list.push(message(String(batch * 10 + i), 'the-key'), message('other', `other-${i}`));
        }
        await transport.publish(topic, list);
      }
      await eventually(() => expect(seen).toEqual(Array.from({ length: 30 }, (_, i) => i)), within);
    });

    it('never runs more handlers at once per consumer than maxInFlight', async () => {
      const { topic, groups } = await freshTopic({ partitions: 8 });
      let running = 0;
      let mostRunning = 0;
      let done = 0;
      await transport.consume(subscription(topic, groups[0] as string, { maxInFlight: 3 }), async () => {
        running++;
        mostRunning = Math.max(mostRunning, running);
        await sleep(5);
        running--;
        done++;
      });
      await transport.publish(topic, messages(40));
      await eventually(() => expect(done).toBe(40), within);
      expect(mostRunning).toBeLessThanOrEqual(3);
      expect(mostRunning).toBeGreaterThan(1);
    });

    it('forgets acknowledged messages: nothing pending once all are acked', async () => {
      const { topic, groups } = await freshTopic();
      const group = groups[0] as string;
      let done = 0;
      await transport.consume(subscription(topic, group), async (d) => {
        await d.ack();
        done++;
      });
      await transport.publish(topic, messages(10));
      await eventually(() => expect(done).toBe(10), within);
      await eventually(async () => expect(await transport.stats(topic, group)).toMatchObject({ pending: 0, inFlight: 0, deadLetters: 0 }), within);
    });

    it('redelivers a failed message as attempt 2 after the backoff', async () => {
      const { topic, groups } = await freshTopic();
      const attempts: { attempt: number; at: number }[] = [];
      await transport.consume(subscription(topic, groups[0] as string), async (d) => {
        attempts.push({ attempt: d.attempt, at: performance.now() });
        if (d.attempt === 1) throw new Error('first try fails');
      });
      await transport.publish(topic, [message('retry me')]);
      await eventually(() => expect(attempts.map((a) => a.attempt)).toEqual([1, 2]), within);
      expect(attempts[1]!.at - attempts[0]!.at).toBeGreaterThanOrEqual(backoffMs - 5);
      await eventually(async () => expect((await transport.stats(topic, groups[0] as string)).pending).toBe(0), within);
    });

    it('lets an explicit settlement win over how the handler ends', async () => {
      const { topic, groups } = await freshTopic();
      const calls: string[] = [];
      await transport.consume(subscription(topic, groups[0] as string), async (d) => {
        calls.push(`${d.message.body}#${d.attempt}`);
        if (d.message.body === 'nacked' && d.attempt === 1) await d.nack(new Error('explicit'), { delayMs: 0 });
        if (d.message.body === 'acked') {
          await d.ack();
          throw new Error('thrown after the ack');
        }
      });
      await transport.publish(topic, [message('nacked'), message('acked'), message('last')]);
      await eventually(() => expect(calls).toEqual(['nacked#1', 'nacked#2', 'acked#1', 'last#1']), within);
      await sleep(backoffMs * 3);
      expect(calls).toHaveLength(4);
      expect(await transport.deadLetters.list({ topic })).toEqual([]);
    });

    it('dead-letters a message after maxAttempts, keeping every error', async () => {
      const { topic, groups } = await freshTopic();
      const group = groups[0] as string;
      const poison = message('always fails');
      let calls = 0;
      await transport.consume(subscription(topic, group, { redelivery: { maxAttempts: 3, backoffMs: () => 20 } }), async (d) => {
        calls++;
        throw new Error(`boom ${d.attempt}`);
      });
      await transport.publish(topic, [poison]);

      const [dead] = await eventually(async () => {
        const list = await transport.deadLetters.list({ topic });
        expect(list).toHaveLength(1);
        return list;
      }, within);
      expect(dead).toMatchObject({ topic, group, attempts: 3, message: { id: poison.id, body: poison.body } });
      expect(dead!.errors.map((e) => [e.attempt, e.error])).toEqual([
        [1, 'boom 1'],
        [2, 'boom 2'],
        [3, 'boom 3'],
      ]);
      expect(Number.isNaN(Date.parse(dead!.deadAt))).toBe(false);
      expect(dead!.errors.every((e) => !Number.isNaN(Date.parse(e.at)))).toBe(true);
      expect(calls).toBe(3);
      expect(await transport.stats(topic, group)).toMatchObject({ pending: 0, inFlight: 0, deadLetters: 1 });
    });

    it('dead-letters at once on deadLetter(reason), without blocking the key behind it', async () => {
      const { topic, groups } = await freshTopic({ partitions: 2 });
      const handled: string[] = [];
      let poisonCalls = 0;
      await transport.consume(subscription(topic, groups[0] as string), async (d) => {
        if (d.message.body === 'poison') {
          poisonCalls++;
          await d.deadLetter('invalid payload');
          return;
        }
        handled.push(d.message.body);
      });
      await transport.publish(topic, [message('poison', 'same-key'), message('next', 'same-key')]);
      await eventually(() => expect(handled).toEqual(['next']), within);
      const [dead] = await transport.deadLetters.list({ topic });
      expect(dead).toMatchObject({ attempts: 1, message: { body: 'poison', key: 'same-key' } });
      expect(dead!.errors.map((e) => [e.attempt, e.error])).toEqual([[1, 'invalid payload']]);
      expect(poisonCalls).toBe(1);
    });

    it('lists, gets, replays and purges dead letters', async () => {
      const { topic, groups } = await freshTopic();
      const group = groups[0] as string;
      const sent = messages(3, 'dead');
      let accept = false;
      const handled: string[] = [];
      await transport.consume(subscription(topic, group), async (d) => {
        if (!accept) return d.deadLetter(`rejected ${d.message.body}`);
        handled.push(`${d.message.body}#${d.attempt}`);
      });
      await transport.publish(topic, sent);

      const all = await eventually(async () => {
        const list = await transport.deadLetters.list({ topic });
        expect(list).toHaveLength(3);
        return list;
      }, within);
      expect(all.map((d) => d.message.id)).toEqual(sent.map((m) => m.id));
      const [first, second, third] = all as [typeof all[0], typeof all[0], typeof all[0]];
      expect(new Set(all.map((d) => d.id)).size).toBe(3);
      expect(await transport.deadLetters.get(first.id)).toEqual(first);
      expect(await transport.deadLetters.get(`missing-${randomUUID()}`)).toBeUndefined();
      expect((await transport.deadLetters.list({ topic, group, limit: 2 })).map((d) => d.id)).toEqual([first.id, second.id]);
      expect((await transport.deadLetters.list({ topic, after: first.id })).map((d) => d.id)).toEqual([second.id, third.id]);
      expect(await transport.deadLetters.list({ topic, group: `group-${randomUUID()}` })).toEqual([]);

      accept = true;
      expect(await transport.deadLetters.replay(first.id)).toBe(true);
      await eventually(() => expect(handled).toEqual(['dead0#1']), within);
      expect(await transport.deadLetters.get(first.id)).toBeUndefined();
      expect(await transport.deadLetters.replay(first.id)).toBe(false);
      expect((await transport.stats(topic, group)).deadLetters).toBe(2);

      expect(await transport.deadLetters.purge({ id: second.id })).toBe(1);
      expect(await transport.deadLetters.purge({ topic, group })).toBe(1);
      expect(await transport.deadLetters.list({ topic })).toEqual([]);
      expect(await eventually(async () => {
        const stats = await transport.stats(topic, group);
        expect(stats.pending).toBe(0);
        return stats;
      }, within)).toMatchObject({ deadLetters: 0, inFlight: 0 });
    });

    it('redelivers after the visibility timeout, aborting the first delivery, whose late ack is void', async () => {
      const { topic, groups } = await freshTopic();
      const group = groups[0] as string;
      const seen: { attempt: number; at: number }[] = [];
      let firstSignal: AbortSignal | undefined;
      let lateAckDone = false;
      const finished: number[] = [];
      const handler: DeliveryHandler = async (d: Delivery) => {
        seen.push({ attempt: d.attempt, at: performance.now() });
        if (d.attempt === 1) {
          firstSignal = d.signal;
          // Presumed dead: wait for the abort, then, once the next delivery is out, ack late.
          await Promise.race([new Promise((resolve) => d.signal.addEventListener('abort', resolve, { once: true })), parked()]);
          await eventually(() => expect(seen.some((s) => s.attempt === 2)).toBe(true), within);
          await d.ack().catch(() => undefined);
          lateAckDone = true;
          return;
        }
        if (d.attempt === 2) {
          await eventually(() => expect(lateAckDone).toBe(true), within);
          throw new Error('second attempt fails, so a third must come');
        }
        finished.push(d.attempt);
      };
      const spec = subscription(topic, group, { visibilityTimeoutMs: visibilityMs, redelivery: { maxAttempts: 5, backoffMs: () => 20 } });
      await transport.consume(spec, handler);
      await transport.consume(spec, handler);
      await transport.publish(topic, [message('slow')]);

      await eventually(() => expect(finished).toEqual([3]), within * 2);
      expect(firstSignal?.aborted).toBe(true);
      expect(seen[1]!.at - seen[0]!.at).toBeGreaterThanOrEqual(visibilityMs - 20);
      await eventually(async () => expect((await transport.stats(topic, group)).pending).toBe(0), within);
    });

    it('stops a consumer gracefully: handlers in flight finish and are acked, nothing new arrives', async () => {
      const { topic, groups } = await freshTopic({ partitions: 2 });
      const group = groups[0] as string;
      const started: string[] = [];
      const finished: string[] = [];
      const consumer = await transport.consume(subscription(topic, group, { maxInFlight: 2 }), async (d) => {
        started.push(d.message.body);
        await sleep(150);
        finished.push(d.message.body);
      });
      const [k0, k1] = keysPerPartition(2) as [string, string];
      await transport.publish(topic, [message('a', k0), message('b', k1)]);
      await eventually(() => expect(started).toHaveLength(2), within);

      await consumer.stop({ graceMs: within });
      expect(finished.sort()).toEqual(['a', 'b']);
      await eventually(async () => expect((await transport.stats(topic, group)).pending).toBe(0), within);

      await transport.publish(topic, [message('after stop')]);
      await sleep(200);
      expect(started).toHaveLength(2);
      expect((await transport.stats(topic, group)).pending).toBe(1);
    });

    it('hands the message of a consumer stopped hard to another consumer at once', async () => {
      const { topic, groups } = await freshTopic();
      const group = groups[0] as string;
      let firstSignal: AbortSignal | undefined;
      const stuck = await transport.consume(subscription(topic, group), async (d) => {
        firstSignal = d.signal;
        await parked();
      });
      const sent = message('orphan');
      await transport.publish(topic, [sent]);
      await eventually(() => expect(firstSignal).toBeDefined(), within);

      const before = performance.now();
      await stuck.stop({ graceMs: 0 });
      expect(performance.now() - before).toBeLessThan(1_000 * scale);
      expect(firstSignal?.aborted).toBe(true);

      const taken: string[] = [];
      // The visibility timeout is 30 s: only the release can explain a prompt redelivery.
      await transport.consume(subscription(topic, group), async (d) => void taken.push(d.message.id));
      await eventually(() => expect(taken).toEqual([sent.id]), within);
    });

    it('rejects publishing with queue_full at maxUnacked when onFull is reject', async () => {
      const { topic, groups } = await freshTopic({ maxUnacked: 3, onFull: 'reject' });
      await transport.publish(topic, messages(3));
      expect(await codeOf(transport.publish(topic, [message('one too many')]))).toBe('queue_full');

      let handled = 0;
      await transport.consume(subscription(topic, groups[0] as string), async () => void handled++);
      await eventually(() => transport.publish(topic, [message('room again')]), within);
      await eventually(() => expect(handled).toBe(4), within);
    });

    it('parks publishing at maxUnacked when onFull is wait, until a consumer acks', async () => {
      const { topic, groups } = await freshTopic({ maxUnacked: 2, onFull: 'wait' });
      await transport.publish(topic, messages(2));
      let resolved = false;
      const waiting = transport.publish(topic, [message('parked')]).then(() => {
        resolved = true;
      });
      const abort = new AbortController();
      const abandoned = message('abandoned');
      const gaveUp = transport.publish(topic, [abandoned], { signal: abort.signal }).then(
        () => 'published',
        () => 'rejected',
      );
      await sleep(150);
      expect(resolved).toBe(false);
      abort.abort();
      expect(await gaveUp).toBe('rejected');

      const handled: string[] = [];
      await transport.consume(subscription(topic, groups[0] as string), async (d) => void handled.push(d.message.id));
      await waiting;
      await eventually(() => expect(handled).toHaveLength(3), within);
      await sleep(100);
      expect(handled).not.toContain(abandoned.id);
    });

    it('refuses bad input with typed errors', async () => {
      expect(await codeOf(transport.publish(`topic-${randomUUID()}`, [message('x')]))).toBe('unknown_topic');
      const { topic } = await freshTopic({ maxMessageBytes: 1024 });
      expect(await codeOf(transport.publish(topic, [message('x'.repeat(1025))]))).toBe('message_too_large');
      expect(await codeOf(transport.publish(topic, [message('x'.repeat(900), undefined, { big: 'y'.repeat(200) })]))).toBe('message_too_large');
      // Bytes, not characters: 600 two-byte characters are 1200 bytes.
      expect(await codeOf(transport.publish(topic, [message('é'.repeat(600))]))).toBe('message_too_large');
      await transport.publish(topic, [message('x'.repeat(900))]);
    });

    it('reports pending, in-flight and dead-lettered counts per group', async () => {
      const { topic, groups } = await freshTopic();
      const group = groups[0] as string;
      let release!: () => void;
      const gate = new Promise<void>((resolve) => {
        release = resolve;
        gates.push(resolve);
      });
      await transport.consume(subscription(topic, group), async (d) => {
        if (d.message.body !== 'first') return;
        await gate;
        await d.deadLetter('given up');
      });
      await transport.publish(topic, [message('first'), message('second'), message('third')]);
      await eventually(async () => expect(await transport.stats(topic, group)).toEqual({ topic, group, pending: 3, inFlight: 1, deadLetters: 0 }), within);
      release();
      await eventually(async () => expect(await transport.stats(topic, group)).toEqual({ topic, group, pending: 0, inFlight: 0, deadLetters: 1 }), within);
    });
  });
}
