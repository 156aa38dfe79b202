import { systemClock, type Clock } from '../clock.js';
import { ResilienceConfigError } from '../errors.js';
import { SLIDING_WINDOW_LUA, TOKEN_BUCKET_LUA } from './redis-scripts.js';
import type { RateLimitAlgorithm, RateLimitResult, RateLimitStore } from './types.js';

/**
 * The part of an ioredis client the store uses: `Redis` and `Cluster` both fit. Scripts are
 * registered with `defineCommand`, so each check is one EVALSHA, falling back to EVAL when
 * the server does not have the script yet.
 * @example
 * const client: RedisScriptingClient = new Cluster([{ host: '127.0.0.1', port: 7000 }]);
 */
export interface RedisScriptingClient {
  defineCommand(name: string, definition: { numberOfKeys?: number; lua: string }): void;
}

/**
 * @example
 * createRedisRateLimitStore(redis, { prefix: 'rl:gateway:', time: 'client', clock: createFakeClock() });
 */
export interface RedisRateLimitStoreOptions {
  /** Put before every key, default `rl:`. Must not hold `{`: the key's hash tag follows it. */
  readonly prefix?: string;
  /**
   * Whose clock decides. `server` (default): Redis's TIME, one clock for every process however
   * skewed theirs are. `client`: `clock.now()`, sent with each call (deterministic tests).
   */
  readonly time?: 'server' | 'client';
  /** Used when `time` is `client`; defaults to the system clock. */
  readonly clock?: Clock;
}

const COMMANDS: Record<RateLimitAlgorithm, { name: string; lua: string; suffix: string }> = {
  tokenBucket: { name: 'agoraRateLimitTokenBucket', lua: TOKEN_BUCKET_LUA, suffix: ':tb' },
  slidingWindow: { name: 'agoraRateLimitSlidingWindow', lua: SLIDING_WINDOW_LUA, suffix: ':sw' },
};

/**
 * The Redis key holding `key`'s state of `algorithm`: `<prefix>{<key>}:tb` or `:sw`. The braces
 * make `key` the hash tag, so all of one key's state sits in one Redis Cluster slot.
 * @example
 * redisRateLimitKey('rl:', 'tokenBucket', 'user:42'); // 'rl:{user:42}:tb'
 */
export function redisRateLimitKey(prefix: string, algorithm: RateLimitAlgorithm, key: string): string {
  return `${prefix}{${key}}${COMMANDS[algorithm].suffix}`;
}

function toResult(limit: number, reply: unknown): RateLimitResult {
  const [allowed, remaining, resetAt, retryAfterMs] = Array.isArray(reply) ? (reply as unknown[]) : [];
  if (typeof allowed !== 'number' || typeof remaining !== 'number' || typeof resetAt !== 'number' || typeof retryAfterMs !== 'number') {
    throw new TypeError(`unexpected rate-limit script reply: ${JSON.stringify(reply)}`);
  }
  return { allowed: allowed === 1, limit, remaining, resetAt, retryAfterMs: retryAfterMs < 0 ? Number.POSITIVE_INFINITY : retryAfterMs };
}

/**
 * Limiter state in Redis, shared by every process that uses the same server and prefix. Each
 * check is one atomic Lua script (see redis-scripts.ts for their contracts), and keys carry a
 * PEXPIRE, so idle keys vanish on their own.
 * @example
 * const store = createRedisRateLimitStore(new Redis(process.env.REDIS_URL), { prefix: 'rl:gateway:' });
 * const limiter = slidingWindowLimiter(store, { limit: 100, windowMs: 60_000 });
 * const { allowed, retryAfterMs } = await limiter.consume(`ip:${request.ip}`);
 */
export function createRedisRateLimitStore(redis: RedisScriptingClient, options: RedisRateLimitStoreOptions = {}): RateLimitStore {
  const prefix = options.prefix ?? 'rl:';
  const time = options.time ?? 'server';
  const clock = options.clock ?? systemClock;
  if (prefix.includes('{')) throw new ResilienceConfigError('prefix', `must not contain "{", got ${JSON.stringify(prefix)}`);
  if (time !== 'server' && time !== 'client') throw new ResilienceConfigError('time', `must be "server" or "client", got ${JSON.stringify(time)}`);

  for (const { name, lua } of Object.values(COMMANDS)) redis.defineCommand(name, { numberOfKeys: 1, lua });
  const client = redis as unknown as Record<string, (...args: (string | number)[]) => Promise<unknown>>;

  const run = async (algorithm: RateLimitAlgorithm, key: string, limit: number, args: number[]) => {
    const command = client[COMMANDS[algorithm].name];
    if (command === undefined) throw new TypeError(`the Redis client has no ${COMMANDS[algorithm].name} command after defineCommand`);
    const now = time === 'client' ? String(Math.floor(clock.now())) : '';
    return toResult(limit, await command.call(redis, redisRateLimitKey(prefix, algorithm, key), ...args, now));
  };

  return {
    tokenBucket: (key, params, cost) => run('tokenBucket', key, params.capacity, [params.capacity, params.refillPerSecond, cost]),
    slidingWindow: (key, params, cost) => run('slidingWindow', key, params.limit, [params.limit, params.windowMs, cost]),
  };
}
