import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createFakeClock, type FakeClock } from '../src/testing.js';
import { slidingWindowLimiter, tokenBucketLimiter, type RateLimitAlgorithm, type RateLimitResult, type RateLimitStore } from '../src/rate-limit/index.js';

/** One store under test, on a fake clock that decides its time. */
export interface RateLimitStoreHarness {
  readonly store: RateLimitStore;
  /** Milliseconds until the store drops `key`'s state of `algorithm` if left idle; undefined when it holds none. */
  ttl(algorithm: RateLimitAlgorithm, key: string): Promise<number | undefined>;
  /**
   * How far a measured ttl may fall below the computed one: 0 for a store on the fake clock,
   * more for Redis, whose PEXPIRE counts down in real time.
   */
  readonly ttlSlackMs: number;
  cleanup(): Promise<void>;
}

export type RateLimitStoreFactory = (clock: FakeClock) => Promise<RateLimitStoreHarness>;

/** Consumes `count` times in a row, returning every result. */
async function drain(consume: () => Promise<RateLimitResult>, count: number): Promise<RateLimitResult[]> {
  const results: RateLimitResult[] = [];
  for (let i = 0; i < count; i++) results.push(await consume());
  return results;
}

/**
 * The behaviour every RateLimitStore must have, for both algorithms. Called by the spec of
 * each store with a factory for it; the fake clock starts on a whole second.
 */
export function rateLimitStoreConformance(storeName: string, factory: RateLimitStoreFactory): void {
  let clock: FakeClock;
  let harness: RateLimitStoreHarness;

  beforeEach(async () => {
    clock = createFakeClock();
    harness = await factory(clock);
  });
  afterEach(async () => {
    await harness.cleanup();
  });

  const expectTtl = async (algorithm: RateLimitAlgorithm, key: string, expected: number) => {
    const ttl = await harness.ttl(algorithm, key);
    expect(ttl).toBeDefined();
    expect(ttl).toBeLessThanOrEqual(expected);
    expect(ttl).toBeGreaterThanOrEqual(expected - harness.ttlSlackMs);
  };

  describe(`${storeName}: token bucket`, () => {
    const params = { capacity: 10, refillPerSecond: 10 }; // one token every 100 ms

    it('allows a burst of the capacity, then refuses with the wait for one token', async () => {
      const limiter = tokenBucketLimiter(harness.store, params);
      const t0 = clock.now();
      const burst = await drain(() => limiter.consume('k'), 10);
      expect(burst.map((r) => r.allowed)).toEqual(Array(10).fill(true));
      expect(burst.map((r) => r.remaining)).toEqual([9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
      expect(burst.map((r) => r.resetAt - t0)).toEqual([100, 200, 300, 400, 500, 600, 700, 800, 900, 1000]);
      expect(burst.every((r) => r.limit === 10 && r.retryAfterMs === 0)).toBe(true);
      expect(await limiter.consume('k')).toEqual({ allowed: false, limit: 10, remaining: 0, resetAt: t0 + 1000, retryAfterMs: 100 });
    });

    it('refills continuously with time and never beyond the capacity', async () => {
      const limiter = tokenBucketLimiter(harness.store, params);
      await drain(() => limiter.consume('k'), 10);
      await clock.advance(250); // 2.5 tokens
      expect(await limiter.consume('k')).toMatchObject({ allowed: true, remaining: 1 });
      expect(await limiter.consume('k')).toMatchObject({ allowed: true, remaining: 0 });
      expect(await limiter.consume('k')).toMatchObject({ allowed: false, remaining: 0, retryAfterMs: 50 });
      await clock.advance(50);
      expect(await limiter.consume('k')).toMatchObject({ allowed: true, remaining: 0 });
      await clock.advance(60_000);
      expect(await limiter.consume('k')).toMatchObject({ allowed: true, remaining: 9, resetAt: clock.now() + 100 });
    });

    it('refills at fractional rates', async () => {
      const limiter = tokenBucketLimiter(harness.store, { capacity: 1, refillPerSecond: 0.5 });
      expect(await limiter.consume('k')).toMatchObject({ allowed: true, remaining: 0, resetAt: clock.now() + 2000 });
      expect(await limiter.consume('k')).toMatchObject({ allowed: false, retryAfterMs: 2000 });
      await clock.advance(1999);
      expect(await limiter.consume('k')).toMatchObject({ allowed: false, retryAfterMs: 1 });
      await clock.advance(1);
      expect(await limiter.consume('k')).toMatchObject({ allowed: true });
    });

    it('takes a cost of several tokens at once, or none of it', async () => {
      const limiter = tokenBucketLimiter(harness.store, params);
      expect(await limiter.consume('k', 4)).toMatchObject({ allowed: true, remaining: 6 });
      expect(await limiter.consume('k', 7)).toMatchObject({ allowed: false, remaining: 6, retryAfterMs: 100 });
      expect(await limiter.consume('k', 6)).toMatchObject({ allowed: true, remaining: 0 });
    });

    it('refuses a cost above the capacity for ever, taking nothing', async () => {
      const limiter = tokenBucketLimiter(harness.store, params);
      expect(await limiter.consume('k', 11)).toMatchObject({ allowed: false, remaining: 10, retryAfterMs: Number.POSITIVE_INFINITY });
      expect(await harness.ttl('tokenBucket', 'k')).toBeUndefined();
      expect(await limiter.consume('k')).toMatchObject({ allowed: true, remaining: 9 });
    });

    it('keeps a bucket per key, apart from the sliding window of the same key', async () => {
      const limiter = tokenBucketLimiter(harness.store, params);
      await drain(() => limiter.consume('a'), 10);
      expect(await limiter.consume('a')).toMatchObject({ allowed: false });
      expect(await limiter.consume('b')).toMatchObject({ allowed: true, remaining: 9 });
      expect(await slidingWindowLimiter(harness.store, { limit: 10, windowMs: 1000 }).consume('a')).toMatchObject({ allowed: true, remaining: 9 });
    });

    it('lets a bucket expire once it would be full again', async () => {
      const limiter = tokenBucketLimiter(harness.store, params);
      await drain(() => limiter.consume('k'), 3);
      await expectTtl('tokenBucket', 'k', 300);
      await clock.advance(100);
      await limiter.consume('k'); // 8 after the refill, 7 after this call
      await expectTtl('tokenBucket', 'k', 300);
      expect(await harness.ttl('tokenBucket', 'never-used')).toBeUndefined();
    });

    it('neither refills nor forgets for a caller whose clock is behind', async () => {
      const limiter = tokenBucketLimiter(harness.store, params);
      const t0 = clock.now();
      await drain(() => limiter.consume('k'), 10);
      clock.set(t0 - 5000);
      expect(await limiter.consume('k')).toEqual({ allowed: false, limit: 10, remaining: 0, resetAt: t0 + 1000, retryAfterMs: 5100 });
    });

    it('admits exactly the capacity among 200 concurrent calls', async () => {
      const limiter = tokenBucketLimiter(harness.store, { capacity: 50, refillPerSecond: 1 });
      const results = await Promise.all(Array.from({ length: 200 }, () => limiter.consume('hot')));
      expect(results.filter((r) => r.allowed)).toHaveLength(50);
      expect(results.filter((r) => !r.allowed).every((r) => r.remaining === 0 && r.retryAfterMs === 1000)).toBe(true);
    });
  });

  describe(`${storeName}: sliding window`, () => {
    const params = { limit: 10, windowMs: 1000 };

    it('allows the limit in a window, then refuses until the weighted count leaves room', async () => {
      const limiter = slidingWindowLimiter(harness.store, params);
      const t0 = clock.now();
      const burst = await drain(() => limiter.consume('k'), 10);
      expect(burst.map((r) => r.allowed)).toEqual(Array(10).fill(true));
      expect(burst.map((r) => r.remaining)).toEqual([9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
      expect(burst.every((r) => r.limit === 10 && r.resetAt === t0 + 1000 && r.retryAfterMs === 0)).toBe(true);
      // Next window, the 10 count 10 * (1 - e / 1000); one more fits once that is <= 9: e = 100.
      expect(await limiter.consume('k')).toEqual({ allowed: false, limit: 10, remaining: 0, resetAt: t0 + 1000, retryAfterMs: 1100 });
      await clock.advance(1099);
      expect(await limiter.consume('k')).toMatchObject({ allowed: false, retryAfterMs: 1, resetAt: t0 + 2000 });
      await clock.advance(1);
      expect(await limiter.consume('k')).toMatchObject({ allowed: true, remaining: 0 });
    });

    it('weights the previous window by the part the sliding window still overlaps', async () => {
      const limiter = slidingWindowLimiter(harness.store, params);
      await drain(() => limiter.consume('early'), 10);
      await drain(() => limiter.consume('late'), 10);
      await clock.advance(1300); // 30% into the next window: the previous 10 count as 7
      const early = await drain(() => limiter.consume('early'), 4);
      expect(early.map((r) => r.allowed)).toEqual([true, true, true, false]);
      expect(early.map((r) => r.remaining)).toEqual([2, 1, 0, 0]);
      // 7 + 3 + 1 fits once the previous 10 weigh 6, at 40%: 100 ms on.
      expect(early[3]?.retryAfterMs).toBe(100);
      await clock.advance(400); // 70% in: the previous 10 count as 3
      const late = await drain(() => limiter.consume('late'), 8);
      expect(late.filter((r) => r.allowed)).toHaveLength(7);
      expect(late[7]).toMatchObject({ allowed: false, remaining: 0 });
    });

    it('forgets a window two windows back', async () => {
      const limiter = slidingWindowLimiter(harness.store, params);
      await drain(() => limiter.consume('k'), 10);
      await clock.advance(2000);
      const again = await drain(() => limiter.consume('k'), 10);
      expect(again.every((r) => r.allowed)).toBe(true);
    });

    it('takes a cost of several units at once, or none of it', async () => {
      const limiter = slidingWindowLimiter(harness.store, params);
      expect(await limiter.consume('k', 4)).toMatchObject({ allowed: true, remaining: 6 });
      // 4 + 7 > 10 in this window; next window, 4 * (1 - e / 1000) + 7 <= 10 from e = 250.
      expect(await limiter.consume('k', 7)).toMatchObject({ allowed: false, remaining: 6, retryAfterMs: 1250 });
      expect(await limiter.consume('k', 6)).toMatchObject({ allowed: true, remaining: 0 });
    });

    it('refuses a cost above the limit for ever, counting nothing', async () => {
      const limiter = slidingWindowLimiter(harness.store, params);
      expect(await limiter.consume('k', 11)).toMatchObject({ allowed: false, remaining: 10, retryAfterMs: Number.POSITIVE_INFINITY });
      expect(await harness.ttl('slidingWindow', 'k')).toBeUndefined();
      expect(await limiter.consume('k')).toMatchObject({ allowed: true, remaining: 9 });
    });

    it('keeps counters per key, apart from the token bucket of the same key', async () => {
      const limiter = slidingWindowLimiter(harness.store, params);
      await drain(() => limiter.consume('a'), 10);
      expect(await limiter.consume('a')).toMatchObject({ allowed: false });
      expect(await limiter.consume('b')).toMatchObject({ allowed: true, remaining: 9 });
      expect(await tokenBucketLimiter(harness.store, { capacity: 10, refillPerSecond: 1 }).consume('a')).toMatchObject({ allowed: true, remaining: 9 });
    });

    it('lets counters expire when the next window ends', async () => {
      const limiter = slidingWindowLimiter(harness.store, params);
      await limiter.consume('k');
      await expectTtl('slidingWindow', 'k', 2000);
      await clock.advance(1250);
      await limiter.consume('k');
      await expectTtl('slidingWindow', 'k', 1750);
      expect(await harness.ttl('slidingWindow', 'never-used')).toBeUndefined();
    });

    it('counts from the latest window for a caller whose clock is behind', async () => {
      const limiter = slidingWindowLimiter(harness.store, params);
      const t0 = clock.now();
      await drain(() => limiter.consume('k'), 10);
      clock.set(t0 - 5000);
      expect(await limiter.consume('k')).toEqual({ allowed: false, limit: 10, remaining: 0, resetAt: t0 + 1000, retryAfterMs: 6100 });
    });

    it('admits exactly the limit among 200 concurrent calls', async () => {
      const limiter = slidingWindowLimiter(harness.store, { limit: 50, windowMs: 60_000 });
      const results = await Promise.all(Array.from({ length: 200 }, () => limiter.consume('hot')));
      expect(results.filter((r) => r.allowed)).toHaveLength(50);
      expect(results.filter((r) => !r.allowed).every((r) => r.remaining === 0)).toBe(true);
    });
  });
}
