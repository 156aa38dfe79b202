import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import { constantBackoff } from '../src/backoff.js';
import { BulkheadPolicy } from '../src/bulkhead.js';
import { sleep } from '../src/clock.js';
import { contextOf, wrap, type Policy } from '../src/policy.js';
import { RetryPolicy } from '../src/retry.js';
import { createFakeClock, type FakeClock } from '../src/testing.js';
import { TimeoutPolicy } from '../src/timeout.js';

/** A policy that only records when calls pass through it. */
const tracing = (name: string, log: string[]): Policy => ({
  async execute(fn, options) {
    log.push(`${name} in`);
    try {
      return await fn(contextOf(options));
    } finally {
      log.push(`${name} out`);
    }
  },
});

/** Hangs until its signal aborts, then rejects with the reason, like fetch. */
const hang = ({ signal }: { signal: AbortSignal }) =>
  new Promise<never>((_, reject) => signal.addEventListener('abort', () => reject(signal.reason), { once: true }));

function policies(clock: FakeClock) {
  return {
    retry: new RetryPolicy({ maxAttempts: 3, backoff: constantBackoff(100), clock }),
    timeout: new TimeoutPolicy({ ms: 250, strategy: 'cooperative', clock }),
    bulkhead: new BulkheadPolicy({ maxConcurrent: 1 }),
  };
}

describe('wrap', () => {
  it('enters policies outermost first and leaves them innermost first', async () => {
    const log: string[] = [];
    const policy = wrap(tracing('a', log), tracing('b', log), tracing('c', log));
    await policy.execute(() => void log.push('task'));
    expect(log).toEqual(['a in', 'b in', 'c in', 'task', 'c out', 'b out', 'a out']);
  });

  it('retry(timeout(bulkhead)): each try is bounded by the timeout and sees its attempt number', async () => {
    const clock = createFakeClock();
    const start = clock.now();
    const { retry, timeout, bulkhead } = policies(clock);
    const policy = wrap(retry, timeout, bulkhead);
    const tries: { attempt: number; at: number; executing: number }[] = [];
    const signals = new Set<AbortSignal>();
    const result = policy.execute((ctx) => {
      tries.push({ attempt: ctx.attempt, at: clock.now() - start, executing: bulkhead.executing });
      signals.add(ctx.signal);
      return ctx.attempt < 3 ? hang(ctx) : `done on ${ctx.attempt}`;
    });
    await clock.advance(250 + 100 + 250 + 100);
    await expect(result).resolves.toBe('done on 3');
    expect(tries).toEqual([
      { attempt: 1, at: 0, executing: 1 },
      { attempt: 2, at: 350, executing: 1 },
      { attempt: 3, at: 700, executing: 1 },
    ]);
    // A fresh timeout signal per try: an aborted one is never reused.
    expect(signals.size).toBe(3);
    expect(clock.pending()).toBe(0);
  });

  it('timeout(retry): the timeout bounds all tries together and cuts the wait between them', async () => {
    const clock = createFakeClock();
    const { retry, timeout } = policies(clock);
    const patient = new RetryPolicy({ maxAttempts: 10, backoff: constantBackoff(100), clock });
    const policy = wrap(timeout, patient);
    let tries = 0;
    const result = policy.execute(() => {
      tries++;
      return Promise.reject(new Error('down'));
    });
    const rejected = expect(result).rejects.toMatchObject({ code: 'timeout' });
    await clock.advance(250);
    await rejected;
    // Tries at 0 and 100, then 200; the wait that would end at 300 is cut at 250.
    expect(tries).toBe(3);

    const slow = wrap(retry, timeout);
    tries = 0;
    const perTry = slow.execute((ctx) => {
      tries++;
      return hang(ctx);
    });
    const rejectedToo = expect(perTry).rejects.toMatchObject({ code: 'timeout' });
    await clock.advance(3 * 250 + 2 * 100);
    await rejectedToo;
    expect(tries).toBe(3);
  });

  it('retry(bulkhead) frees the slot between tries; bulkhead(retry) holds it across them', async () => {
    const clock = createFakeClock();
    const failOnce = ({ attempt }: { attempt: number }) => (attempt === 1 ? Promise.reject(new Error('once')) : 'ok');

    const a = policies(clock);
    const slotPerTry = wrap(a.retry, a.bulkhead);
    const first = slotPerTry.execute(failOnce);
    await clock.advance(50); // first waits between its tries
    await expect(a.bulkhead.execute(() => 'other')).resolves.toBe('other');
    await clock.advance(50);
    await expect(first).resolves.toBe('ok');

    const b = policies(clock);
    const slotPerCall = wrap(b.bulkhead, b.retry);
    const held = slotPerCall.execute(failOnce);
    await clock.advance(50);
    await expect(b.bulkhead.execute(() => 'other')).rejects.toMatchObject({ code: 'bulkhead_full' });
    await clock.advance(50);
    await expect(held).resolves.toBe('ok');
  });

  it('carries the caller signal through every layer, and leaves no listener on it', async () => {
    const clock = createFakeClock();
    const { retry, timeout, bulkhead } = policies(clock);
    const policy = wrap(retry, timeout, bulkhead);
    const caller = new AbortController();
    for (let i = 0; i < 100; i++) await policy.execute(() => i, { signal: caller.signal });
    expect(getEventListeners(caller.signal, 'abort')).toHaveLength(0);

    let inner: AbortSignal | undefined;
    const result = policy.execute(
      (ctx) => {
        inner = ctx.signal;
        return sleep(clock, 1_000, ctx.signal);
      },
      { signal: caller.signal },
    );
    const rejected = expect(result).rejects.toBe('caller left');
    await clock.advance(10);
    caller.abort('caller left');
    await rejected;
    expect(inner?.aborted).toBe(true);
    expect(bulkhead.executing).toBe(0);
  });
});
