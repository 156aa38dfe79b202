// Resilience policies and rate limiters, side by side with cockatiel, opossum and
// rate-limiter-flexible, in the same process and run. Targets (issue #3): the breaker at least
// cockatiel's throughput and at least 2x opossum's; retry and the composed policy at least
// cockatiel's; both rate limiter stores at least rate-limiter-flexible's.
import {
  circuitBreaker as cockatielBreaker,
  ConsecutiveBreaker,
  ExponentialBackoff,
  handleAll,
  retry as cockatielRetry,
  timeout as cockatielTimeout,
  TimeoutStrategy,
  wrap as cockatielWrap,
} from 'cockatiel';
import { Redis } from 'ioredis';
import Opossum from 'opossum';
import { RateLimiterMemory, RateLimiterRedis } from 'rate-limiter-flexible';
import {
  CircuitBreaker,
  createMemoryRateLimitStore,
  createRedisRateLimitStore,
  exponentialBackoff,
  RetryPolicy,
  slidingWindowLimiter,
  TimeoutPolicy,
  wrap,
} from '@agora/resilience';
import { startRedisServer } from '../../test/support/redis.js';
import { compare, type Result } from '../harness.js';

const task = async () => 1;
const KEYS = Array.from({ length: 1000 }, (_, i) => `client-${i}`);
let k = 0;
const nextKey = () => KEYS[k++ % KEYS.length]!;
const HUGE = 1_000_000_000; // never limited: measures the check, not the refusal

export async function run(): Promise<Result[]> {
  const results: Result[] = [];

  const ours = new CircuitBreaker({ consecutiveFailures: 5, openMs: 30_000 });
  const theirs = cockatielBreaker(handleAll, { halfOpenAfter: 30_000, breaker: new ConsecutiveBreaker(5) });
  const opossum = new Opossum(task, { timeout: false, errorThresholdPercentage: 50, resetTimeout: 30_000 });
  results.push(
    await compare({
      title: 'circuit breaker, closed, succeeding calls',
      ours: { name: 'agora CircuitBreaker', op: () => ours.execute(task) },
      peers: [
        { name: 'cockatiel', op: () => theirs.execute(task) },
        { name: 'opossum', op: () => opossum.fire() },
      ],
      targets: { cockatiel: 1, opossum: 2 },
    }),
  );
  opossum.shutdown();

  const ourRetry = new RetryPolicy({ maxAttempts: 3, backoff: exponentialBackoff({ initialMs: 10, maxMs: 1000 }) });
  const theirRetry = cockatielRetry(handleAll, { maxAttempts: 2, backoff: new ExponentialBackoff() });
  results.push(
    await compare({
      title: 'retry, no failure',
      ours: { name: 'agora RetryPolicy', op: () => ourRetry.execute(task) },
      peers: [{ name: 'cockatiel', op: () => theirRetry.execute(task) }],
      targets: { cockatiel: 1 },
    }),
  );

  const ourComposed = wrap(
    new RetryPolicy({ maxAttempts: 3, backoff: exponentialBackoff({ initialMs: 10, maxMs: 1000 }) }),
    new CircuitBreaker({ consecutiveFailures: 5, openMs: 30_000 }),
    new TimeoutPolicy({ ms: 1000, strategy: 'cooperative' }),
  );
  const theirComposed = cockatielWrap(
    cockatielRetry(handleAll, { maxAttempts: 2, backoff: new ExponentialBackoff() }),
    cockatielBreaker(handleAll, { halfOpenAfter: 30_000, breaker: new ConsecutiveBreaker(5) }),
    cockatielTimeout(1000, TimeoutStrategy.Cooperative),
  );
  results.push(
    await compare({
      title: 'retry + breaker + timeout, composed',
      ours: { name: 'agora wrap(...)', op: () => ourComposed.execute(task) },
      peers: [{ name: 'cockatiel', op: () => theirComposed.execute(task) }],
      targets: { cockatiel: 1 },
    }),
  );

  const memory = slidingWindowLimiter(createMemoryRateLimitStore(), { limit: HUGE, windowMs: 1000 });
  const rlfMemory = new RateLimiterMemory({ points: HUGE, duration: 1 });
  results.push(
    await compare({
      title: 'rate limiter, in-memory store, 1000 keys',
      ours: { name: 'agora sliding window', op: () => memory.consume(nextKey()) },
      peers: [{ name: 'rate-limiter-flexible', op: () => rlfMemory.consume(nextKey()) }],
      targets: { 'rate-limiter-flexible': 1 },
    }),
  );

  const server = process.env.REDIS_URL === undefined ? await startRedisServer() : undefined;
  const url = process.env.REDIS_URL ?? server!.url;
  const ourClient = new Redis(url);
  const theirClient = new Redis(url, { enableOfflineQueue: false });
  // rate-limiter-flexible wants enableOfflineQueue off; such a client refuses commands until ready.
  await Promise.all([ourClient.ping(), new Promise((resolve) => theirClient.once('ready', resolve))]);
  try {
    const redis = slidingWindowLimiter(createRedisRateLimitStore(ourClient, { prefix: `bench:${process.pid}:` }), { limit: HUGE, windowMs: 1000 });
    const rlfRedis = new RateLimiterRedis({ storeClient: theirClient, points: HUGE, duration: 1, keyPrefix: `bench-rlf:${process.pid}` });
    results.push(
      await compare({
        title: 'rate limiter, Redis store, 1000 keys, 32 in flight',
        ours: { name: 'agora sliding window', op: () => redis.consume(nextKey()) },
        peers: [{ name: 'rate-limiter-flexible', op: () => rlfRedis.consume(nextKey()) }],
        concurrency: 32,
        targets: { 'rate-limiter-flexible': 1 },
      }),
    );
  } finally {
    ourClient.disconnect();
    theirClient.disconnect();
    await server?.stop();
  }
  return results;
}
