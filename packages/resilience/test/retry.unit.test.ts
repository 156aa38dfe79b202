import { getEventListeners } from 'node:events';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { constantBackoff, exponentialBackoff, type Backoff } from '../src/backoff.js';
import { RetryBudget } from '../src/budget.js';
import { parseRetryAfter } from '../src/retry-after.js';
import { isRetryable, RetryPolicy, type GiveUpEvent, type RetryEvent } from '../src/retry.js';
import { createFakeClock } from '../src/testing.js';
import { configError } from './helpers.js';

/** An error flagged the way retry filters read it. */
const failure = (message: string, retryable?: boolean) => Object.assign(new Error(message), retryable === undefined ? {} : { retryable });

/** A random source that plays back `values` in turn. */
const sequence = (...values: number[]) => {
  let i = 0;
  return () => values[i++ % values.length]!;
};


describe('exponentialBackoff', () => {
  it('without jitter, multiplies by `multiplier` per retry and stops at maxMs', () => {
    const backoff = exponentialBackoff({ initialMs: 100, maxMs: 1_000, jitter: 'none' });
    expect([1, 2, 3, 4, 5, 60, 5000].map((a) => backoff.next(a, undefined))).toEqual([100, 200, 400, 800, 1_000, 1_000, 1_000]);
    const triple = exponentialBackoff({ initialMs: 10, maxMs: 10_000, multiplier: 3, jitter: 'none' });
    expect([1, 2, 3].map((a) => triple.next(a, undefined))).toEqual([10, 30, 90]);
  });

  it('with full jitter, draws random() times the capped exponential delay', () => {
    const backoff = exponentialBackoff({ initialMs: 100, maxMs: 1_000, jitter: 'full' }, sequence(0, 0.5, 0.999));
    expect(backoff.next(1, undefined)).toBe(0);
    expect(backoff.next(3, undefined)).toBe(200);
    expect(backoff.next(10, undefined)).toBeCloseTo(999);
  });

  it('defaults to full jitter', () => {
    const backoff = exponentialBackoff({ initialMs: 100, maxMs: 1_000 }, () => 0.25);
    expect(backoff.next(2, undefined)).toBe(50);
  });

  it('with decorrelated jitter, draws between initialMs and three times the previous delay, capped', () => {
    const backoff = exponentialBackoff({ initialMs: 100, maxMs: 1_000, jitter: 'decorrelated' }, sequence(0, 1, 0.5, 1));
    expect(backoff.next(1, undefined)).toBe(100); // low end
    expect(backoff.next(2, 100)).toBe(300); // 3 * 100
    expect(backoff.next(3, 300)).toBe(500); // halfway from 100 to 900
    expect(backoff.next(4, 900)).toBe(1_000); // 2 700 capped
  });

  it('keeps full jitter in [0, cap] and decorrelated jitter in [initialMs, min(maxMs, 3 * previous)] for any draw', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 1_000 }),
        fc.integer({ min: 0, max: 100_000 }),
        fc.integer({ min: 1, max: 80 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (initialMs, extra, attempt, draw) => {
          const maxMs = initialMs + extra;
          const full = exponentialBackoff({ initialMs, maxMs, jitter: 'full' }, () => draw).next(attempt, undefined);
          expect(full).toBeGreaterThanOrEqual(0);
          expect(full).toBeLessThanOrEqual(Math.min(maxMs, initialMs * 2 ** (attempt - 1)));

          const decorrelated = exponentialBackoff({ initialMs, maxMs, jitter: 'decorrelated' }, () => draw);
          let previous: number | undefined;
          for (let a = 1; a <= attempt; a++) {
            const next = decorrelated.next(a, previous);
            expect(next).toBeGreaterThanOrEqual(initialMs);
            expect(next).toBeLessThanOrEqual(Math.min(maxMs, 3 * (previous ?? initialMs)));
            previous = next;
          }
        },
      ),
    );
  });

  it('names the option it refuses', () => {
    expect(configError(() => exponentialBackoff({ initialMs: 0, maxMs: 10 })).option).toBe('initialMs');
    expect(configError(() => exponentialBackoff({ initialMs: -5, maxMs: 10 })).option).toBe('initialMs');
    expect(configError(() => exponentialBackoff({ initialMs: 100, maxMs: 50 })).option).toBe('maxMs');
    expect(configError(() => exponentialBackoff({ initialMs: 100, maxMs: Infinity })).option).toBe('maxMs');
    expect(configError(() => exponentialBackoff({ initialMs: 1, maxMs: 10, multiplier: 0.5 })).option).toBe('multiplier');
    expect(configError(() => exponentialBackoff({ initialMs: 1, maxMs: 10, jitter: 'half' as 'full' })).option).toBe('jitter');
    expect(configError(() => constantBackoff(-1)).option).toBe('ms');
  });
});

describe('constantBackoff', () => {
  it('returns the same delay for every retry, zero included', () => {
    expect([1, 2, 9].map((a) => constantBackoff(250).next(a, 250))).toEqual([250, 250, 250]);
    expect(constantBackoff(0).next(1, undefined)).toBe(0);
  });
});

describe('RetryPolicy: retrying', () => {
  it('succeeds after failures, waiting the backoff between tries and counting attempts', async () => {
    const clock = createFakeClock();
    const start = clock.now();
    const retry = new RetryPolicy({ maxAttempts: 4, backoff: exponentialBackoff({ initialMs: 100, maxMs: 1_000, jitter: 'none' }), clock });
    const tries: { attempt: number; at: number }[] = [];
    const result = retry.execute(({ attempt }) => {
      tries.push({ attempt, at: clock.now() - start });
      if (attempt < 3) throw failure(`try ${attempt}`);
      return 'ok';
    });

    await clock.advance(99);
    expect(tries).toHaveLength(1);
    await clock.advance(1);
    expect(tries).toHaveLength(2);
    await clock.advance(200);
    await expect(result).resolves.toBe('ok');
    expect(tries).toEqual([
      { attempt: 1, at: 0 },
      { attempt: 2, at: 100 },
      { attempt: 3, at: 300 },
    ]);
    expect(clock.pending()).toBe(0);
  });

  it('gives up after maxAttempts and rethrows the last error itself', async () => {
    const clock = createFakeClock();
    const retry = new RetryPolicy({ maxAttempts: 3, backoff: constantBackoff(10), clock });
    const errors: Error[] = [];
    const result = retry.execute(({ attempt }) => {
      const err = failure(`try ${attempt}`);
      errors.push(err);
      return Promise.reject(err);
    });
    const rejected = expect(result).rejects.toThrow('try 3');
    await clock.advance(20);
    await rejected;
    expect(errors).toHaveLength(3);
    await expect(result).rejects.toBe(errors[2]);
  });

  it('never retries an error flagged retryable: false, by default', async () => {
    const retry = new RetryPolicy({ maxAttempts: 5, backoff: constantBackoff(0), clock: createFakeClock() });
    let tries = 0;
    const err = failure('bad request', false);
    await expect(
      retry.execute(() => {
        tries++;
        throw err;
      }),
    ).rejects.toBe(err);
    expect(tries).toBe(1);
  });

  it('retries errors flagged retryable: true and errors with no flag, by default', async () => {
    expect(isRetryable(failure('reset', true))).toBe(true);
    expect(isRetryable(failure('reset'))).toBe(true);
    expect(isRetryable('a string')).toBe(true);
    expect(isRetryable(failure('bad', false))).toBe(false);

    const retry = new RetryPolicy({ maxAttempts: 3, backoff: constantBackoff(0), clock: createFakeClock() });
    const flags = [true, undefined];
    const result = await retry.execute(({ attempt }) => {
      if (attempt <= flags.length) throw failure('transient', flags[attempt - 1]);
      return attempt;
    });
    expect(result).toBe(3);
  });

  it('asks shouldRetry with the error and the attempt that failed', async () => {
    const seen: [string, number][] = [];
    const retry = new RetryPolicy({
      maxAttempts: 5,
      backoff: constantBackoff(0),
      clock: createFakeClock(),
      shouldRetry: (err, attempt) => {
        seen.push([(err as Error).message, attempt]);
        return attempt < 2;
      },
    });
    await expect(retry.execute(({ attempt }) => Promise.reject(failure(`try ${attempt}`)))).rejects.toThrow('try 2');
    expect(seen).toEqual([
      ['try 1', 1],
      ['try 2', 2],
    ]);
  });

  it('waits what Retry-After asks when it is longer than the backoff, capped by maxDelayMs', async () => {
    const clock = createFakeClock();
    const start = clock.now();
    const retry = new RetryPolicy({
      maxAttempts: 4,
      backoff: constantBackoff(100),
      retryAfterMs: (err) => parseRetryAfter((err as { retryAfter?: string }).retryAfter, clock.now()),
      maxDelayMs: 5_000,
      clock,
    });
    const delays: number[] = [];
    retry.onRetry(({ delayMs }) => delays.push(delayMs));
    const at: number[] = [];
    const result = retry.execute(({ attempt }) => {
      at.push(clock.now() - start);
      // 2 s (longer than the backoff), 0 s (shorter), 60 s (beyond the cap)
      if (attempt < 4) throw Object.assign(failure('busy'), { retryAfter: ['2', '0', '60'][attempt - 1] });
      return 'done';
    });
    await clock.advance(10_000);
    await expect(result).resolves.toBe('done');
    expect(delays).toEqual([2_000, 100, 5_000]);
    expect(at).toEqual([0, 2_000, 2_100, 7_100]);
  });

  it('caps backoff delays by maxDelayMs too, and ignores a Retry-After it cannot read', async () => {
    const clock = createFakeClock();
    const retry = new RetryPolicy({ maxAttempts: 2, backoff: constantBackoff(900), maxDelayMs: 300, retryAfterMs: () => Number.NaN, clock });
    const delays: number[] = [];
    retry.onRetry(({ delayMs }) => delays.push(delayMs));
    const result = retry.execute(({ attempt }) => (attempt === 1 ? Promise.reject(failure('x')) : 'ok'));
    await clock.advance(300);
    await expect(result).resolves.toBe('ok');
    expect(delays).toEqual([300]);
  });

  it('stops waiting when the caller aborts, rejecting with the signal reason, and leaves no timer or listener', async () => {
    const clock = createFakeClock();
    const retry = new RetryPolicy({ maxAttempts: 5, backoff: constantBackoff(1_000), clock });
    const giveUps: GiveUpEvent[] = [];
    retry.onGiveUp((e) => giveUps.push(e));
    const caller = new AbortController();
    let tries = 0;
    const err = failure('down');
    const result = retry.execute(
      () => {
        tries++;
        throw err;
      },
      { signal: caller.signal },
    );
    const rejected = expect(result).rejects.toBe('caller left');
    await clock.advance(500);
    caller.abort('caller left');
    await rejected;
    expect(tries).toBe(1);
    expect(clock.pending()).toBe(0);
    expect(getEventListeners(caller.signal, 'abort')).toHaveLength(0);
    expect(giveUps).toEqual([{ attempts: 1, error: err, reason: 'aborted' }]);
  });

  it('does not retry a failure that happened because the caller aborted', async () => {
    const retry = new RetryPolicy({ maxAttempts: 5, backoff: constantBackoff(0), clock: createFakeClock() });
    const caller = new AbortController();
    const reasons: string[] = [];
    retry.onGiveUp(({ reason }) => reasons.push(reason));
    let tries = 0;
    const result = retry.execute(
      ({ signal }) => {
        tries++;
        caller.abort();
        throw signal.reason;
      },
      { signal: caller.signal },
    );
    await expect(result).rejects.toBe(caller.signal.reason);
    expect(tries).toBe(1);
    expect(reasons).toEqual(['aborted']);
  });

  it('passes the caller signal to every try and removes its listeners over many executions', async () => {
    const clock = createFakeClock();
    const retry = new RetryPolicy({ maxAttempts: 2, backoff: constantBackoff(5), clock });
    const caller = new AbortController();
    const signals = new Set<AbortSignal>();
    for (let i = 0; i < 200; i++) {
      const result = retry.execute(
        ({ signal, attempt }) => {
          signals.add(signal);
          return attempt === 1 ? Promise.reject(failure('once')) : i;
        },
        { signal: caller.signal },
      );
      await clock.advance(5);
      await expect(result).resolves.toBe(i);
    }
    expect([...signals]).toEqual([caller.signal]);
    expect(getEventListeners(caller.signal, 'abort')).toHaveLength(0);
  });
});

describe('RetryPolicy: events', () => {
  it('reports each retry, the success with its attempt count, and why it gave up', async () => {
    const clock = createFakeClock();
    const retry = new RetryPolicy({ maxAttempts: 3, backoff: exponentialBackoff({ initialMs: 10, maxMs: 100, jitter: 'none' }), clock });
    const retries: RetryEvent[] = [];
    const giveUps: GiveUpEvent[] = [];
    const successes: number[] = [];
    retry.onRetry((e) => retries.push(e));
    retry.onGiveUp((e) => giveUps.push(e));
    const sub = retry.onSuccess(({ attempts }) => successes.push(attempts));

    const errors = [failure('a'), failure('b'), failure('c')];
    const ok = retry.execute(({ attempt }) => (attempt < 3 ? Promise.reject(errors[attempt - 1]) : 'ok'));
    await clock.advance(30);
    await expect(ok).resolves.toBe('ok');
    expect(retries).toEqual([
      { attempt: 1, delayMs: 10, error: errors[0] },
      { attempt: 2, delayMs: 20, error: errors[1] },
    ]);
    expect(successes).toEqual([3]);

    const failed = retry.execute(({ attempt }) => Promise.reject(errors[attempt - 1]));
    const rejected = expect(failed).rejects.toBe(errors[2]);
    await clock.advance(30);
    await rejected;
    const notRetryable = failure('no', false);
    await expect(retry.execute(() => Promise.reject(notRetryable))).rejects.toBe(notRetryable);
    expect(giveUps).toEqual([
      { attempts: 3, error: errors[2], reason: 'attempts' },
      { attempts: 1, error: notRetryable, reason: 'not-retryable' },
    ]);

    sub.dispose();
    await retry.execute(() => 'again');
    expect(successes).toEqual([3]);
  });
});

describe('RetryPolicy: budget', () => {
  it('retries at most ratio * calls when every call fails, and rethrows the last error when refused', async () => {
    const clock = createFakeClock();
    const budget = new RetryBudget({ ratio: 0.2, minPerSecond: 0, clock });
    const retry = new RetryPolicy({ maxAttempts: 3, backoff: constantBackoff(0), budget, clock });
    const reasons = new Map<string, number>();
    retry.onGiveUp(({ reason }) => reasons.set(reason, (reasons.get(reason) ?? 0) + 1));
    let tries = 0;
    for (let i = 0; i < 100; i++) {
      const err = failure(`call ${i}`);
      await expect(
        retry.execute(() => {
          tries++;
          throw err;
        }),
      ).rejects.toBe(err);
    }
    expect(tries - 100).toBe(20);
    expect(reasons.get('budget')).toBeGreaterThan(0);
    expect((reasons.get('budget') ?? 0) + (reasons.get('attempts') ?? 0)).toBe(100);
  });

  it('adds the per-second floor on top of the ratio, for concurrent calls too, and never more', async () => {
    const clock = createFakeClock();
    const budget = new RetryBudget({ ratio: 0.2, minPerSecond: 1, windowMs: 10_000, clock });
    const retry = new RetryPolicy({ maxAttempts: 10, backoff: constantBackoff(1), budget, clock });
    let tries = 0;
    const calls = Array.from({ length: 100 }, () =>
      retry
        .execute(() => {
          tries++;
          throw failure('down');
        })
        .catch(() => undefined),
    );
    await clock.advance(20);
    await Promise.all(calls);
    expect(tries - 100).toBe(20 + 10);
  });

  it('shares one budget across policies', async () => {
    const clock = createFakeClock();
    const budget = new RetryBudget({ ratio: 0.5, minPerSecond: 0, clock });
    const a = new RetryPolicy({ maxAttempts: 2, backoff: constantBackoff(0), budget, clock });
    const b = new RetryPolicy({ maxAttempts: 2, backoff: constantBackoff(0), budget, clock });
    let tries = 0;
    const fail = () => {
      tries++;
      throw failure('down');
    };
    for (const policy of [a, b, a, b]) await policy.execute(fail).catch(() => undefined);
    expect(tries - 4).toBe(2);
  });
});

describe('RetryPolicy: options', () => {
  it('names the option it refuses', () => {
    const backoff: Backoff = constantBackoff(0);
    expect(configError(() => new RetryPolicy({ maxAttempts: 0, backoff })).option).toBe('maxAttempts');
    expect(configError(() => new RetryPolicy({ maxAttempts: 1.5, backoff })).option).toBe('maxAttempts');
    expect(configError(() => new RetryPolicy({ maxAttempts: 2, backoff, maxDelayMs: 0 })).option).toBe('maxDelayMs');
    expect(configError(() => new RetryPolicy({ maxAttempts: 2, backoff, maxDelayMs: -1 })).option).toBe('maxDelayMs');
  });

  it('with maxAttempts 1, tries once', async () => {
    const retry = new RetryPolicy({ maxAttempts: 1, backoff: constantBackoff(0) });
    let tries = 0;
    await expect(
      retry.execute(() => {
        tries++;
        throw failure('x');
      }),
    ).rejects.toThrow('x');
    expect(tries).toBe(1);
  });
});

describe('parseRetryAfter', () => {
  const now = Date.UTC(2015, 9, 21, 7, 27, 0);

  it('reads delay-seconds', () => {
    expect(parseRetryAfter('120', now)).toBe(120_000);
    expect(parseRetryAfter(' 0 ', now)).toBe(0);
  });

  it('reads the three HTTP-date forms, relative to now', () => {
    expect(parseRetryAfter('Wed, 21 Oct 2015 07:28:00 GMT', now)).toBe(60_000);
    expect(parseRetryAfter('Wednesday, 21-Oct-15 07:28:30 GMT', now)).toBe(90_000);
    expect(parseRetryAfter('Wed Oct 21 07:29:00 2015', now)).toBe(120_000);
    expect(parseRetryAfter('Wed Oct  1 07:29:00 2015', Date.UTC(2015, 9, 1, 7, 28, 0))).toBe(60_000);
  });

  it('gives 0 for a date in the past', () => {
    expect(parseRetryAfter('Tue, 20 Oct 2015 07:28:00 GMT', now)).toBe(0);
  });

  it.each([undefined, '', 'soon', '-5', '1.5', '1e3', '0x10', 'Wed, 31 Feb 2015 07:28:00 GMT', 'Wed, 21 Foo 2015 07:28:00 GMT', 'Wed, 21 Oct 2015 25:28:00 GMT', '2015-10-21T07:28:00Z', 'Wed, 21 Oct 2015 07:28:00'])(
    'gives undefined for %j',
    (header) => {
      expect(parseRetryAfter(header, now)).toBeUndefined();
    },
  );
});
