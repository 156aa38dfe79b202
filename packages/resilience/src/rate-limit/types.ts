/**
 * What one `consume` call decided, in the shape of the IETF RateLimit headers.
 * @example
 * const { allowed, limit, remaining, resetAt, retryAfterMs } = await limiter.consume(key);
 * reply.header('ratelimit', `limit=${limit}, remaining=${remaining}, reset=${Math.ceil((resetAt - Date.now()) / 1000)}`);
 * if (!allowed) reply.header('retry-after', Math.ceil(retryAfterMs / 1000)).code(429);
 */
export interface RateLimitResult {
  /** True when the cost was taken; false when the call should be refused (HTTP 429). */
  readonly allowed: boolean;
  /** The limiter's limit: the bucket's capacity, or the window's limit. */
  readonly limit: number;
  /** Whole units still available right after this call. */
  readonly remaining: number;
  /**
   * Milliseconds since the epoch: for a token bucket, when it is full again if nothing else is
   * taken; for a sliding window, when the current fixed window ends.
   */
  readonly resetAt: number;
  /**
   * 0 when allowed; otherwise how long until the same cost would be allowed if nothing else is
   * taken. `Number.POSITIVE_INFINITY` when the cost exceeds the limit and can never be allowed.
   */
  readonly retryAfterMs: number;
}

/**
 * Limits how often a caller, named by `key`, may act.
 * @example
 * const result = await limiter.consume(`user:${userId}`);
 * if (!result.allowed) reply.header('retry-after', Math.ceil(result.retryAfterMs / 1000)).code(429);
 */
export interface RateLimiter {
  /** Takes `cost` (an integer >= 1, default 1) units for `key` if they are available. */
  consume(key: string, cost?: number): Promise<RateLimitResult>;
  readonly limit: number;
}

/**
 * A bucket of `capacity` tokens that refills continuously at `refillPerSecond`.
 * @example
 * const params: TokenBucketParams = { capacity: 20, refillPerSecond: 5 }; // bursts of 20, 5/s after
 */
export interface TokenBucketParams {
  /** Integer >= 1: the largest burst, and the tokens a new key starts with. */
  readonly capacity: number;
  /** Tokens added per second, > 0 (fractions allowed: 0.5 is one token every 2 s). */
  readonly refillPerSecond: number;
}

/**
 * At most `limit` units per `windowMs`, counted as Cloudflare does: the count of the current
 * fixed window plus the previous window's count weighted by how much of it the sliding window
 * still overlaps.
 * @example
 * const params: SlidingWindowParams = { limit: 100, windowMs: 60_000 }; // about 100 a minute
 */
export interface SlidingWindowParams {
  /** Integer >= 1. */
  readonly limit: number;
  /** Integer >= 1. */
  readonly windowMs: number;
}

/**
 * Names an algorithm's state in a store, as its method is named.
 * @example
 * const ttl = memoryStore.ttl('slidingWindow', 'ip:203.0.113.7');
 */
export type RateLimitAlgorithm = 'tokenBucket' | 'slidingWindow';

/**
 * Where limiter state lives. Each method is one atomic check-and-take: concurrent calls for
 * one key never admit more than the algorithm allows. State of keys left idle is dropped once
 * it no longer matters, so a store's size follows its active keys. Parameters are trusted:
 * the limiter factories validate them. A token bucket and a sliding window of the same key
 * are separate; two limiters of one algorithm sharing a store and a key share their state,
 * so give each limiter its own key space (`login:${ip}`, `api:${ip}`).
 * @example
 * const store: RateLimitStore = redisUrl ? createRedisRateLimitStore(new Redis(redisUrl)) : createMemoryRateLimitStore();
 * const result = await store.tokenBucket('login:203.0.113.7', { capacity: 5, refillPerSecond: 0.1 }, 1);
 */
export interface RateLimitStore {
  tokenBucket(key: string, params: TokenBucketParams, cost: number): Promise<RateLimitResult>;
  slidingWindow(key: string, params: SlidingWindowParams, cost: number): Promise<RateLimitResult>;
}
