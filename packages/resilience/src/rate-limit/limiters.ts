import { check, ResilienceConfigError } from '../errors.js';
import type { RateLimiter, RateLimitStore, SlidingWindowParams, TokenBucketParams } from './types.js';

/** 2^50: leaves room for sums of a few such values below 2^53, where doubles stop being exact integers. */
const MAX_EXACT = 2 ** 50;

/** Rejects a bad cost the way the store would fail: as a rejected promise, not a throw. */
function badCost(cost: number): Promise<never> | undefined {
  if (Number.isInteger(cost) && cost >= 1) return undefined;
  return Promise.reject(new ResilienceConfigError('cost', `must be an integer >= 1, got ${cost}`));
}

function required(option: string, value: number | undefined): number {
  if (value === undefined) throw new ResilienceConfigError(option, 'is required');
  return value;
}

/**
 * A token bucket: bursts up to `capacity`, then `refillPerSecond` on average. A cost above the
 * capacity is refused with `retryAfterMs` = Infinity; a cost that is not an integer >= 1
 * rejects with a ResilienceConfigError naming `cost`.
 * @example
 * const limiter = tokenBucketLimiter(createMemoryRateLimitStore(), { capacity: 20, refillPerSecond: 5 });
 * const { allowed, remaining } = await limiter.consume(`user:${userId}`);
 */
export function tokenBucketLimiter(store: RateLimitStore, options: TokenBucketParams): RateLimiter {
  check.positiveInt('capacity', required('capacity', options.capacity));
  check.positive('refillPerSecond', required('refillPerSecond', options.refillPerSecond));
  // Every duration the stores compute (a full refill at most) stays an exact integer of ms.
  if ((options.capacity * 1000) / options.refillPerSecond > MAX_EXACT) {
    throw new ResilienceConfigError('refillPerSecond', `too slow for capacity ${options.capacity}: a full refill must take under 2^50 ms`);
  }
  const params: TokenBucketParams = { capacity: options.capacity, refillPerSecond: options.refillPerSecond };
  return {
    limit: params.capacity,
    // Not async: one promise per check (the store's), not two.
    consume(key, cost = 1) {
      return badCost(cost) ?? store.tokenBucket(key, params, cost);
    },
  };
}

/**
 * A sliding-window counter: about `limit` per `windowMs`, and never more than `limit` in any
 * fixed window [k * windowMs, (k + 1) * windowMs). A cost above the limit is refused with
 * `retryAfterMs` = Infinity; a cost that is not an integer >= 1 rejects with a
 * ResilienceConfigError naming `cost`.
 * @example
 * const limiter = slidingWindowLimiter(createRedisRateLimitStore(redis), { limit: 100, windowMs: 60_000 });
 * const result = await limiter.consume(`ip:${ip}`, 5); // an expensive call counts five
 */
export function slidingWindowLimiter(store: RateLimitStore, options: SlidingWindowParams): RateLimiter {
  check.positiveInt('limit', required('limit', options.limit));
  check.positiveInt('windowMs', required('windowMs', options.windowMs));
  // The weighted count is kept multiplied by windowMs, in integers that must stay exact.
  if (options.limit * options.windowMs > MAX_EXACT) throw new ResilienceConfigError('windowMs', `too long for limit ${options.limit}: limit * windowMs must be under 2^50`);
  const params: SlidingWindowParams = { limit: options.limit, windowMs: options.windowMs };
  return {
    limit: params.limit,
    consume(key, cost = 1) {
      return badCost(cost) ?? store.slidingWindow(key, params, cost);
    },
  };
}
