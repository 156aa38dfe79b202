import { describe, expect, expectTypeOf, it } from 'vitest';
import { constantBackoff } from '../src/backoff.js';
import { isTaskTimeoutError } from '../src/errors.js';
import { FallbackPolicy } from '../src/fallback.js';
import { wrap } from '../src/policy.js';
import { RetryPolicy } from '../src/retry.js';
import { createFakeClock } from '../src/testing.js';
import { TimeoutPolicy } from '../src/timeout.js';

describe('FallbackPolicy', () => {
  it('returns the result of a call that succeeds, without falling back', async () => {
    const fallback = new FallbackPolicy({ fallback: 'stale' });
    const errors: unknown[] = [];
    fallback.onFallback(({ error }) => errors.push(error));
    await expect(fallback.execute(() => 'fresh')).resolves.toBe('fresh');
    expect(errors).toEqual([]);
  });

  it('returns the fallback value on failure, and reports the failure', async () => {
    const fallback = new FallbackPolicy({ fallback: [] as string[] });
    const errors: unknown[] = [];
    fallback.onFallback(({ error }) => errors.push(error));
    const err = new Error('down');
    const posts = await fallback.execute((): Promise<string[]> => Promise.reject(err));
    expectTypeOf(posts).toEqualTypeOf<string[]>();
    expect(posts).toEqual([]);
    expect(errors).toEqual([err]);
  });

  it('calls a fallback function with the error, awaiting it', async () => {
    const fallback = new FallbackPolicy({ fallback: async (err: unknown) => `cached (${(err as Error).message})` });
    const result = await fallback.execute((): number => {
      throw new Error('down');
    });
    expectTypeOf(result).toEqualTypeOf<number | string>();
    expect(result).toBe('cached (down)');
  });

  it('rethrows failures `when` does not choose, as they are', async () => {
    const fallback = new FallbackPolicy({ fallback: 0, when: isTaskTimeoutError });
    const errors: unknown[] = [];
    fallback.onFallback(({ error }) => errors.push(error));
    const err = Object.assign(new Error('bad request'), { code: 'invalid' });
    await expect(fallback.execute(() => Promise.reject(err))).rejects.toBe(err);
    expect(errors).toEqual([]);
  });

  it('rejects with the fallback function’s own error when it fails too', async () => {
    const own = new Error('no cache either');
    const fallback = new FallbackPolicy<string>({
      fallback: () => {
        throw own;
      },
    });
    await expect(fallback.execute(() => Promise.reject(new Error('down')))).rejects.toBe(own);
  });

  it('passes the caller signal and attempt to the task', async () => {
    const fallback = new FallbackPolicy({ fallback: null });
    const caller = new AbortController();
    const seen = await fallback.execute((ctx) => ctx, { signal: caller.signal, attempt: 2 });
    expect(seen).toEqual({ signal: caller.signal, attempt: 2 });
  });

  it('goes outermost around a wrapped policy, replacing the failure that survives it', async () => {
    const clock = createFakeClock();
    const timeout = new TimeoutPolicy({ ms: 100, strategy: 'aggressive', clock });
    const retry = new RetryPolicy({ maxAttempts: 2, backoff: constantBackoff(10), clock });
    const fallback = new FallbackPolicy({ fallback: 'cached', when: isTaskTimeoutError });
    const errors: unknown[] = [];
    fallback.onFallback(({ error }) => errors.push(error));
    const policy = wrap(retry, timeout);
    let tries = 0;
    const result = fallback.execute((ctx) =>
      policy.execute(() => {
        tries++;
        return new Promise<string>(() => undefined);
      }, ctx),
    );
    await clock.advance(210);
    await expect(result).resolves.toBe('cached');
    expect(tries).toBe(2);
    expect(errors).toEqual([expect.objectContaining({ code: 'timeout' })]);
  });
});
