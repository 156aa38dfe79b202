import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import { sleep } from '../src/clock.js';
import { isTaskTimeoutError, type TaskTimeoutError } from '../src/errors.js';
import { TimeoutPolicy, type TimeoutStrategy } from '../src/timeout.js';
import { createFakeClock, type FakeClock } from '../src/testing.js';
import { configError } from './helpers.js';

/** A task that rejects with an AbortError of its own when its signal aborts, as fetch does without a reason. */
const honouring =
  (clock: FakeClock, ms: number) =>
  ({ signal }: { signal: AbortSignal }) =>
    sleep(clock, ms, signal).then(
      () => 'finished',
      () => Promise.reject(new DOMException('the operation was aborted', 'AbortError')),
    );

/** A task that pays no attention to its signal. */
const ignoring = (clock: FakeClock, ms: number, value = 'late') => () => sleep(clock, ms).then(() => value);

/** A 100 ms timeout on fake time, with the `ms` of every onTimeout event it fires. */
function timeoutOf(strategy: TimeoutStrategy) {
  const clock = createFakeClock();
  const timeout = new TimeoutPolicy({ ms: 100, strategy, clock });
  const timeouts: number[] = [];
  timeout.onTimeout(({ ms }) => timeouts.push(ms));
  return { clock, timeout, timeouts };
}

describe('TimeoutPolicy: both strategies', () => {
  it.each<TimeoutStrategy>(['cooperative', 'aggressive'])('%s: returns the result and clears the timer when the task wins', async (strategy) => {
    const { clock, timeout, timeouts } = timeoutOf(strategy);
    let signal: AbortSignal | undefined;
    const result = timeout.execute((ctx) => {
      signal = ctx.signal;
      return sleep(clock, 50).then(() => 'fast');
    });
    await clock.advance(50);
    await expect(result).resolves.toBe('fast');
    expect(clock.pending()).toBe(0);
    await clock.advance(100);
    expect(signal?.aborted).toBe(false);
    expect(timeouts).toEqual([]);
  });

  it.each<TimeoutStrategy>(['cooperative', 'aggressive'])('%s: aborts the task signal at the deadline with a TaskTimeoutError reason', async (strategy) => {
    const { clock, timeout, timeouts } = timeoutOf(strategy);
    let signal: AbortSignal | undefined;
    const result = timeout.execute((ctx) => {
      signal = ctx.signal;
      return new Promise<never>((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason)));
    });
    const rejected = expect(result).rejects.toMatchObject({ code: 'timeout', timeoutMs: 100 });
    await clock.advance(99);
    expect(signal?.aborted).toBe(false);
    await clock.advance(1);
    await rejected;
    expect(isTaskTimeoutError(signal?.reason)).toBe(true);
    expect(timeouts).toEqual([100]);
  });

  it.each<TimeoutStrategy>(['cooperative', 'aggressive'])('%s: passes a caller abort on to the task, as it is, and does not call it a timeout', async (strategy) => {
    const clock = createFakeClock();
    const timeout = new TimeoutPolicy({ ms: 1_000, strategy, clock });
    const timeouts: number[] = [];
    timeout.onTimeout(({ ms }) => timeouts.push(ms));
    const caller = new AbortController();
    let signal: AbortSignal | undefined;
    const result = timeout.execute(
      (ctx) => {
        signal = ctx.signal;
        return new Promise<never>((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason)));
      },
      { signal: caller.signal },
    );
    const rejected = expect(result).rejects.toBe('caller left');
    await clock.advance(10);
    caller.abort('caller left');
    await rejected;
    expect(signal?.reason).toBe('caller left');
    expect(clock.pending()).toBe(0);
    await clock.advance(2_000);
    expect(timeouts).toEqual([]);
  });

  it.each<TimeoutStrategy>(['cooperative', 'aggressive'])('%s: does not start a task whose caller has already aborted', async (strategy) => {
    const timeout = new TimeoutPolicy({ ms: 100, strategy, clock: createFakeClock() });
    const caller = new AbortController();
    caller.abort('gone');
    let started = false;
    await expect(timeout.execute(() => (started = true), { signal: caller.signal })).rejects.toBe('gone');
    expect(started).toBe(false);
  });

  it.each<TimeoutStrategy>(['cooperative', 'aggressive'])('%s: leaves no listener on a long-lived caller signal over 1000 calls', async (strategy) => {
    const clock = createFakeClock();
    const timeout = new TimeoutPolicy({ ms: 10, strategy, clock });
    const shutdown = new AbortController();
    for (let i = 0; i < 1_000; i++) {
      // Alternate calls that finish in time with calls that time out.
      const result = timeout.execute<number | string>(i % 2 === 0 ? () => i : honouring(clock, 50), { signal: shutdown.signal });
      if (i % 2 === 0) await expect(result).resolves.toBe(i);
      else {
        const rejected = expect(result).rejects.toMatchObject({ code: 'timeout' });
        await clock.advance(10);
        await rejected;
        await clock.advance(50);
      }
    }
    expect(getEventListeners(shutdown.signal, 'abort')).toHaveLength(0);
    expect(clock.pending()).toBe(0);
  });

  it.each<TimeoutStrategy>(['cooperative', 'aggressive'])('%s: turns a synchronous throw into a rejection and passes the attempt on', async (strategy) => {
    const timeout = new TimeoutPolicy({ ms: 100, strategy, clock: createFakeClock() });
    const err = new Error('sync');
    await expect(
      timeout.execute(() => {
        throw err;
      }),
    ).rejects.toBe(err);
    await expect(timeout.execute(({ attempt }) => attempt, { attempt: 3 })).resolves.toBe(3);
  });
});

describe('TimeoutPolicy: cooperative', () => {
  it('rejects with a TaskTimeoutError whose cause is the task error, once the task rejects', async () => {
    const clock = createFakeClock();
    const timeout = new TimeoutPolicy({ ms: 100, strategy: 'cooperative', clock });
    const result = timeout.execute(honouring(clock, 1_000));
    const caught = result.then((value) => expect.fail(`resolved with ${value}`), (err: unknown) => err as TaskTimeoutError);
    await clock.advance(100);
    const err = await caught;
    expect(err.code).toBe('timeout');
    expect(err.timeoutMs).toBe(100);
    expect((err.cause as DOMException).name).toBe('AbortError');
  });

  it('waits for a task that ignores its signal and returns its value: the task decides', async () => {
    const clock = createFakeClock();
    const timeout = new TimeoutPolicy({ ms: 100, strategy: 'cooperative', clock });
    const timeouts: number[] = [];
    timeout.onTimeout(({ ms }) => timeouts.push(ms));
    let settled = false;
    const result = timeout.execute(ignoring(clock, 300)).finally(() => (settled = true));
    await clock.advance(100);
    expect(timeouts).toEqual([100]);
    expect(settled).toBe(false);
    await clock.advance(200);
    await expect(result).resolves.toBe('late');
  });

  it('rethrows a task failure before the deadline as it is', async () => {
    const timeout = new TimeoutPolicy({ ms: 100, strategy: 'cooperative', clock: createFakeClock() });
    const err = Object.assign(new Error('refused'), { code: 'ECONNREFUSED' });
    await expect(timeout.execute(() => Promise.reject(err))).rejects.toBe(err);
  });
});

describe('TimeoutPolicy: aggressive', () => {
  it('rejects at the deadline with code timeout even when the task ignores its signal', async () => {
    const clock = createFakeClock();
    const timeout = new TimeoutPolicy({ ms: 100, strategy: 'aggressive', clock });
    let finished = false;
    const result = timeout.execute(() => sleep(clock, 1_000).then(() => (finished = true)));
    const rejected = expect(result).rejects.toMatchObject({ code: 'timeout' });
    await clock.advance(100);
    await rejected;
    expect(finished).toBe(false);
    await clock.advance(900);
    expect(finished).toBe(true);
  });

  it('swallows the late rejection of an abandoned task', async () => {
    const clock = createFakeClock();
    const timeout = new TimeoutPolicy({ ms: 100, strategy: 'aggressive', clock });
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const result = timeout.execute(() => sleep(clock, 500).then(() => Promise.reject(new Error('late failure'))));
      const rejected = expect(result).rejects.toMatchObject({ code: 'timeout' });
      await clock.advance(100);
      await rejected;
      await clock.advance(400);
      await new Promise((resolve) => setImmediate(resolve));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});

describe('TimeoutPolicy: options', () => {
  it('names the option it refuses', () => {
    expect(configError(() => new TimeoutPolicy({ ms: 0, strategy: 'aggressive' })).option).toBe('ms');
    expect(configError(() => new TimeoutPolicy({ ms: -10, strategy: 'aggressive' })).option).toBe('ms');
    expect(configError(() => new TimeoutPolicy({ ms: Number.NaN, strategy: 'cooperative' })).option).toBe('ms');
    expect(configError(() => new TimeoutPolicy({ ms: 10, strategy: 'optimistic' as TimeoutStrategy })).option).toBe('strategy');
  });
});
