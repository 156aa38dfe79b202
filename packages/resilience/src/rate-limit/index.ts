export type { RateLimiter, RateLimitResult, RateLimitStore, RateLimitAlgorithm, TokenBucketParams, SlidingWindowParams } from './types.js';
export { tokenBucketLimiter, slidingWindowLimiter } from './limiters.js';
export { createMemoryRateLimitStore, type MemoryRateLimitStore, type MemoryRateLimitStoreOptions } from './memory-store.js';
export { createRedisRateLimitStore, redisRateLimitKey, type RedisScriptingClient, type RedisRateLimitStoreOptions } from './redis-store.js';
