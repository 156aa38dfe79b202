import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createMemoryTransport, createTransport, isBusError, type BusClock, type SubscriptionSpec } from '../src/index.js';
import { eventually, transportConformance } from './transport.conformance.js';

transportConformance('memory', async () => ({ transport: createMemoryTransport(), cleanup: async () => undefined }));

const spec = (topic: string, overrides: Partial<SubscriptionSpec> = {}): SubscriptionSpec => ({
  topic,
  group: 'g',
  maxInFlight: 1,
  visibilityTimeoutMs: 30_000,
  redelivery: { maxAttempts: 3, backoffMs: () => 0 },
  ...overrides,
});

/** A clock that moves only when told, firing due timers in order. */
function fakeClock(): BusClock & { advance(ms: number): Promise<void> } {
  let now = 0;
  let nextId = 0;
  const timers = new Map<number, { at: number; callback: () => void }>();
  return {
    now: () => now,
    setTimeout(callback, ms) {
      timers.set(++nextId, { at: now + ms, callback });
      return nextId;
    },
    clearTimeout(handle) {
      timers.delete(handle as number);
    },
    async advance(ms) {
      const until = now + ms;
      for (;;) {
        const due = [...timers.entries()].filter(([, t]) => t.at <= until).sort((a, b) => a[1].at - b[1].at)[0];
        if (due === undefined) break;
        timers.delete(due[0]);
        now = due[1].at;
        due[1].callback();
        await new Promise((resolve) => setImmediate(resolve));
      }
      now = until;
      await new Promise((resolve) => setImmediate(resolve));
    },
  };
}

describe('memory transport: retention and internals', () => {
  it('keeps memory bounded: 100k published and consumed leave the log empty', async () => {
    const transport = createMemoryTransport();
    await transport.declareTopic({ name: 'bulk', partitions: 4 });
    await transport.declareGroup('bulk', 'g');
    let handled = 0;
    await transport.consume(spec('bulk', { maxInFlight: 4 }), async () => void handled++);
    const batch = 10_000;
    for (let b = 0; b < 10; b++) {
      await transport.publish(
        'bulk',
        Array.from({ length: batch }, (_, i) => ({ id: `${b}-${i}`, key: `k${i % 100}`, headers: {}, body: 'x' })),
      );
    }
    await eventually(() => expect(handled).toBe(100_000), 10_000);
    expect(transport.retainedMessages()).toBe(0);
    await transport.close();
  });

  it('holds a message until every declared group has settled it', async () => {
    const transport = createMemoryTransport();
    await transport.declareTopic({ name: 'fanout' });
    await transport.declareGroup('fanout', 'fast');
    await transport.declareGroup('fanout', 'slow');
    await transport.publish('fanout', [{ id: '1', headers: {}, body: 'a' }, { id: '2', headers: {}, body: 'b' }]);
    let fast = 0;
    await transport.consume(spec('fanout', { group: 'fast' }), async () => void fast++);
    await eventually(() => expect(fast).toBe(2), 1_000);
    expect(transport.retainedMessages()).toBe(2);
    let slow = 0;
    await transport.consume(spec('fanout', { group: 'slow' }), async () => void slow++);
    await eventually(() => expect(slow).toBe(2), 1_000);
    expect(transport.retainedMessages()).toBe(0);
    await transport.close();
  });

  it('keeps what is published to a topic without groups for the first earliest group, and a latest group drops it', async () => {
    const transport = createMemoryTransport();
    await transport.declareTopic({ name: 'early' });
    await transport.publish('early', [{ id: '1', headers: {}, body: 'kept' }, { id: '2', headers: {}, body: 'kept' }]);
    expect(transport.retainedMessages()).toBe(2);
    const early: string[] = [];
    await transport.consume(spec('early'), async (d) => void early.push(d.message.id));
    await eventually(() => expect(early).toEqual(['1', '2']), 1_000);
    await eventually(() => expect(transport.retainedMessages()).toBe(0), 1_000);

    await transport.declareTopic({ name: 'late' });
    await transport.publish('late', [{ id: '1', headers: {}, body: 'before' }]);
    const late: string[] = [];
    await transport.consume(spec('late', { startFrom: 'latest' }), async (d) => void late.push(d.message.id));
    await transport.publish('late', [{ id: '2', headers: {}, body: 'after' }]);
    await eventually(() => expect(late).toEqual(['2']), 1_000);
    await eventually(() => expect(transport.retainedMessages()).toBe(0), 1_000);
    await transport.close();
  });

  it('replays a dead letter behind what already waits in its partition', async () => {
    const transport = createMemoryTransport();
    await transport.declareTopic({ name: 'replay' });
    await transport.declareGroup('replay', 'g');
    await transport.declareGroup('replay', 'other');
    const seen: string[] = [];
    let reject = true;
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    await transport.consume(spec('replay'), async (d) => {
      if (d.message.id === 'a' && reject) return d.deadLetter('no');
      if (d.message.id === 'b') await gate;
      seen.push(d.message.id);
    });
    await transport.publish('replay', [{ id: 'a', headers: {}, body: '' }, { id: 'b', headers: {}, body: '' }, { id: 'c', headers: {}, body: '' }]);
    const [dead] = await eventually(async () => {
      const list = await transport.deadLetters.list();
      expect(list).toHaveLength(1);
      return list;
    }, 1_000);
    reject = false;
    expect(await transport.deadLetters.replay(dead!.id)).toBe(true);
    release();
    await eventually(() => expect(seen).toEqual(['b', 'c', 'a']), 1_000);
    // The other group never sees the replay, and it does not count as pending there.
    expect((await transport.stats('replay', 'other')).pending).toBe(3);
    await transport.close();
  });

  it('expires on the injected clock, with one timer per consumer, and counts the timeout as an attempt', async () => {
    const clock = fakeClock();
    const transport = createMemoryTransport({ clock });
    await transport.declareTopic({ name: 'vt' });
    const attempts: number[] = [];
    await transport.consume(spec('vt', { maxInFlight: 2, visibilityTimeoutMs: 1_000, redelivery: { maxAttempts: 2, backoffMs: () => 0 } }), (d) => {
      attempts.push(d.attempt);
      return new Promise<void>((resolve) => d.signal.addEventListener('abort', () => resolve(), { once: true }));
    });
    await transport.publish('vt', [{ id: 'x', headers: {}, body: '' }]);
    await clock.advance(999);
    expect(attempts).toEqual([1]);
    await clock.advance(1);
    expect(attempts).toEqual([1, 2]);
    await clock.advance(1_000);
    const [dead] = await transport.deadLetters.list({ topic: 'vt' });
    expect(dead?.attempts).toBe(2);
    expect(dead?.errors.map((e) => e.error)).toEqual(['visibility timeout of 1000 ms passed', 'visibility timeout of 1000 ms passed']);
    expect(dead?.errors[0]?.at).toBe(new Date(1_000).toISOString());
    await transport.close();
  });

  it('waits out the backoff on the injected clock before redelivering', async () => {
    const clock = fakeClock();
    const transport = createMemoryTransport({ clock });
    await transport.declareTopic({ name: 'backoff' });
    const attempts: number[] = [];
    await transport.consume(spec('backoff', { redelivery: { maxAttempts: 3, backoffMs: (n) => 100 * n } }), async (d) => {
      attempts.push(d.attempt);
      throw 'plain string';
    });
    await transport.publish('backoff', [{ id: 'x', headers: {}, body: '' }]);
    await clock.advance(99);
    expect(attempts).toEqual([1]);
    await clock.advance(1);
    expect(attempts).toEqual([1, 2]);
    await clock.advance(200);
    expect(attempts).toEqual([1, 2, 3]);
    const [dead] = await transport.deadLetters.list();
    expect(dead?.errors.map((e) => e.error)).toEqual(['plain string', 'plain string', 'plain string']);
    await transport.close();
  });

  it('refuses bad options and use after close with typed errors', async () => {
    const transport = createMemoryTransport();
    const code = (p: Promise<unknown>) => p.then(() => undefined, (err: unknown) => (isBusError(err) ? err.code : 'other'));
    expect(await code(transport.declareTopic({ name: 't', partitions: 0 }))).toBe('invalid_option');
    await transport.declareTopic({ name: 't' });
    expect(await code(transport.consume(spec('t', { maxInFlight: 0 }), async () => undefined))).toBe('invalid_option');
    expect(await code(transport.consume(spec('nope'), async () => undefined))).toBe('unknown_topic');
    expect(await code(transport.stats('nope', 'g'))).toBe('unknown_topic');
    await transport.close();
    expect(await code(transport.publish('t', []))).toBe('transport_closed');
  });
});

describe('createTransport', () => {
  it('resolves memory: and postgres:, and names a scheme it cannot resolve', async () => {
    expect(createTransport('memory:').kind).toBe('memory');
    const postgres = createTransport('postgres://agora@127.0.0.1:1/none');
    expect(postgres.kind).toBe('postgres');
    await postgres.close();
    for (const url of ['kafka://x', 'amqp://localhost']) {
      try {
        createTransport(url);
        expect.unreachable();
      } catch (err) {
        expect(isBusError(err, 'invalid_option')).toBe(true);
        expect((err as { details: { scheme: string } }).details.scheme).toBe(url.split(':')[0]);
      }
    }
    expect(() => createTransport(`no scheme ${randomUUID()}`)).toThrow(expect.objectContaining({ code: 'invalid_option' }));
  });
});
