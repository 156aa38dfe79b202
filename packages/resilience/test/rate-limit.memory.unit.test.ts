import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createFakeClock } from '../src/testing.js';
import { createMemoryRateLimitStore, slidingWindowLimiter, tokenBucketLimiter, type RateLimitStore } from '../src/rate-limit/index.js';
import { slidingWindowStep, type SlidingWindowState } from '../src/rate-limit/sliding-window.js';
import { tokenBucketStep, type TokenBucketState } from '../src/rate-limit/token-bucket.js';
import { rateLimitStoreConformance } from './rate-limit.conformance.js';

rateLimitStoreConformance('memory store', async (clock) => {
  const store = createMemoryRateLimitStore({ clock });
  return { store, ttl: async (algorithm, key) => store.ttl(algorithm, key), ttlSlackMs: 0, cleanup: async () => undefined };
});

describe('memory store: bounded size', () => {
  it('never holds more than maxKeys, dropping old entries for new keys', async () => {
    const clock = createFakeClock();
    const store = createMemoryRateLimitStore({ clock, maxKeys: 100 });
    const limiter = tokenBucketLimiter(store, { capacity: 1, refillPerSecond: 0.001 });
    for (let i = 0; i < 1000; i++) await limiter.consume(`k${i}`);
    expect(store.size).toBe(100);
    // The newest keys are held: their limit still applies.
    expect(await limiter.consume('k999')).toMatchObject({ allowed: false });
    expect(store.ttl('tokenBucket', 'k0')).toBeUndefined();
  });

  it('sweeps expired keys every 64 checks, so idle keys do not pile up below maxKeys', async () => {
    const clock = createFakeClock();
    const store = createMemoryRateLimitStore({ clock });
    const limiter = slidingWindowLimiter(store, { limit: 5, windowMs: 100 });
    for (let i = 0; i < 50; i++) await limiter.consume(`idle${i}`);
    expect(store.size).toBe(50);
    await clock.advance(200);
    for (let i = 0; i < 128; i++) await limiter.consume('busy');
    expect(store.size).toBe(1);
  });

  it('refuses maxKeys below 1 naming the option', () => {
    expect(() => createMemoryRateLimitStore({ maxKeys: 0 })).toThrow(expect.objectContaining({ code: 'invalid_option', option: 'maxKeys' }));
  });
});

describe('rate limiter options', () => {
  const store = createMemoryRateLimitStore();
  const invalid = { code: 'invalid_option' };

  it.each([
    ['capacity', { capacity: 0, refillPerSecond: 1 }],
    ['capacity', { capacity: 1.5, refillPerSecond: 1 }],
    ['refillPerSecond', { capacity: 1, refillPerSecond: 0 }],
    ['refillPerSecond', { capacity: 1, refillPerSecond: Number.POSITIVE_INFINITY }],
    ['capacity', { refillPerSecond: 1 }],
    ['refillPerSecond', { capacity: 1000, refillPerSecond: 1e-12 }],
  ])('a token bucket refuses a bad %s at construction', (option, options) => {
    expect(() => tokenBucketLimiter(store, options as never)).toThrow(expect.objectContaining({ ...invalid, option }));
  });

  it.each([
    ['limit', { limit: 0, windowMs: 1000 }],
    ['limit', { limit: 2.5, windowMs: 1000 }],
    ['windowMs', { limit: 1, windowMs: 0 }],
    ['windowMs', { limit: 1, windowMs: 0.5 }],
    ['windowMs', { limit: 1 }],
    ['windowMs', { limit: 1e9, windowMs: 365 * 86_400_000 }],
  ])('a sliding window refuses a bad %s at construction', (option, options) => {
    expect(() => slidingWindowLimiter(store, options as never)).toThrow(expect.objectContaining({ ...invalid, option }));
  });

  it.each([0, -1, 1.5, Number.NaN])('consume rejects cost %s naming the option, for both algorithms', async (cost) => {
    const bucket = tokenBucketLimiter(store, { capacity: 5, refillPerSecond: 1 });
    const window = slidingWindowLimiter(store, { limit: 5, windowMs: 1000 });
    await expect(bucket.consume('k', cost)).rejects.toMatchObject({ ...invalid, option: 'cost' });
    await expect(window.consume('k', cost)).rejects.toMatchObject({ ...invalid, option: 'cost' });
  });

  it('exposes the limit', () => {
    expect(tokenBucketLimiter(store, { capacity: 7, refillPerSecond: 1 }).limit).toBe(7);
    expect(slidingWindowLimiter(store, { limit: 9, windowMs: 1000 }).limit).toBe(9);
  });
});

/** Random calls: each a wait in ms, then a cost. */
const calls = fc.array(fc.tuple(fc.integer({ min: 0, max: 400 }), fc.integer({ min: 1, max: 4 })), { minLength: 1, maxLength: 200 });

async function replay(store: RateLimitStore, clock: ReturnType<typeof createFakeClock>, consume: (cost: number) => ReturnType<RateLimitStore['tokenBucket']>, seq: [number, number][]) {
  const admitted: { at: number; cost: number }[] = [];
  for (const [wait, cost] of seq) {
    await clock.advance(wait);
    const result = await consume(cost);
    if (result.allowed) admitted.push({ at: clock.now(), cost });
    expect(result.allowed ? result.retryAfterMs === 0 : result.retryAfterMs > 0).toBe(true);
  }
  return admitted;
}

describe('rate limiter invariants on random traffic', () => {
  it('a token bucket never admits more than capacity + rate * elapsed in any interval', async () => {
    await fc.assert(
      fc.asyncProperty(calls, async (seq) => {
        const clock = createFakeClock();
        const store = createMemoryRateLimitStore({ clock });
        const params = { capacity: 5, refillPerSecond: 20 };
        const admitted = await replay(store, clock, (cost) => store.tokenBucket('k', params, cost), seq);
        for (let i = 0; i < admitted.length; i++) {
          let total = 0;
          for (let j = i; j < admitted.length; j++) {
            total += admitted[j]?.cost ?? 0;
            const elapsed = (admitted[j]?.at ?? 0) - (admitted[i]?.at ?? 0);
            expect(total).toBeLessThanOrEqual(params.capacity + (params.refillPerSecond * elapsed) / 1000 + 1e-9);
          }
        }
      }),
      { numRuns: 100 },
    );
  });

  it('a sliding window never admits more than the limit in a fixed window, nor the weighted count', async () => {
    await fc.assert(
      fc.asyncProperty(calls, async (seq) => {
        const clock = createFakeClock();
        const store = createMemoryRateLimitStore({ clock });
        const params = { limit: 6, windowMs: 500 };
        const admitted = await replay(store, clock, (cost) => store.slidingWindow('k', params, cost), seq);
        const perWindow = new Map<number, number>();
        for (const { at, cost } of admitted) perWindow.set(Math.floor(at / params.windowMs), (perWindow.get(Math.floor(at / params.windowMs)) ?? 0) + cost);
        for (const { at } of admitted) {
          const w = Math.floor(at / params.windowMs);
          const overlap = (params.windowMs - (at - w * params.windowMs)) / params.windowMs;
          const counted = (perWindow.get(w - 1) ?? 0) * overlap + admitted.filter((a) => a.at <= at && Math.floor(a.at / params.windowMs) === w).reduce((s, a) => s + a.cost, 0);
          expect(counted).toBeLessThanOrEqual(params.limit + 1e-9);
        }
        for (const count of perWindow.values()) expect(count).toBeLessThanOrEqual(params.limit);
      }),
      { numRuns: 100 },
    );
  });
});

describe('retryAfterMs on random traffic', () => {
  // After a refusal, the same cost is refused 1 ms before retryAfterMs and allowed at it.
  it('is exact for a token bucket', () => {
    const params = { capacity: 5, refillPerSecond: 3 };
    fc.assert(
      fc.property(calls, (seq) => {
        let state: TokenBucketState | undefined;
        let now = Date.UTC(2026, 0, 1);
        for (const [wait, cost] of seq) {
          now += wait;
          const step = tokenBucketStep(state, params, cost, now);
          if (step.next !== undefined) state = step.next;
          if (step.result.allowed) continue;
          const at = now + step.result.retryAfterMs;
          expect(tokenBucketStep(state, params, cost, at - 1).result.allowed).toBe(false);
          expect(tokenBucketStep(state, params, cost, at).result.allowed).toBe(true);
        }
      }),
      { numRuns: 200 },
    );
  });

  it('is exact for a sliding window', () => {
    const params = { limit: 6, windowMs: 700 };
    fc.assert(
      fc.property(calls, (seq) => {
        let state: SlidingWindowState | undefined;
        let now = Date.UTC(2026, 0, 1) + 123;
        for (const [wait, cost] of seq) {
          now += wait;
          const step = slidingWindowStep(state, params, cost, now);
          if (step.next !== undefined) state = step.next;
          if (step.result.allowed) continue;
          const at = now + step.result.retryAfterMs;
          expect(slidingWindowStep(state, params, cost, at - 1).result.allowed).toBe(false);
          expect(slidingWindowStep(state, params, cost, at).result.allowed).toBe(true);
        }
      }),
      { numRuns: 200 },
    );
  });
});
