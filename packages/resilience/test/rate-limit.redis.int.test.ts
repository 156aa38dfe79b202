import { spawn } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { createFakeClock } from '../src/testing.js';
import { createRedisRateLimitStore, redisRateLimitKey, slidingWindowLimiter, tokenBucketLimiter, type RateLimitAlgorithm } from '../src/rate-limit/index.js';
import { SLIDING_WINDOW_LUA, TOKEN_BUCKET_LUA } from '../src/rate-limit/redis-scripts.js';
import { rateLimitStoreConformance } from './rate-limit.conformance.js';

const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const HAMMER = fileURLToPath(new URL('./fixtures/hammer.ts', import.meta.url));

const redis = new Redis(inject('redisUrl'), { maxRetriesPerRequest: 1 });
afterAll(async () => {
  await redis.quit();
});

/** A prefix no other test uses, so tests can share the server. */
const uniquePrefix = () => `rl:test:${randomUUID()}:`;

async function deleteByPrefix(prefix: string): Promise<void> {
  for await (const keys of redis.scanStream({ match: `${prefix}*`, count: 1000 })) {
    if ((keys as string[]).length > 0) await redis.del(...(keys as string[]));
  }
}

async function serverNow(): Promise<number> {
  const [seconds, micros] = await redis.time();
  return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
}

rateLimitStoreConformance('redis store', async (clock) => {
  const prefix = uniquePrefix();
  const store = createRedisRateLimitStore(redis, { prefix, time: 'client', clock });
  return {
    store,
    async ttl(algorithm: RateLimitAlgorithm, key: string) {
      const ms = await redis.pttl(redisRateLimitKey(prefix, algorithm, key));
      if (ms === -2) return undefined;
      return ms === -1 ? Number.POSITIVE_INFINITY : ms;
    },
    ttlSlackMs: 500,
    cleanup: () => deleteByPrefix(prefix),
  };
});

describe('redis store: keys, scripts and time', () => {
  it('puts the limiter key in braces, so all its state shares one Redis Cluster slot', async () => {
    expect(redisRateLimitKey('rl:', 'tokenBucket', 'user:1')).toBe('rl:{user:1}:tb');
    expect(redisRateLimitKey('rl:', 'slidingWindow', 'user:1')).toBe('rl:{user:1}:sw');
    const prefix = uniquePrefix();
    const store = createRedisRateLimitStore(redis, { prefix });
    await tokenBucketLimiter(store, { capacity: 2, refillPerSecond: 1 }).consume('user:1');
    await slidingWindowLimiter(store, { limit: 2, windowMs: 1000 }).consume('user:1');
    expect((await redis.keys(`${prefix}*`)).sort()).toEqual([`${prefix}{user:1}:sw`, `${prefix}{user:1}:tb`]);
    await deleteByPrefix(prefix);
  });

  it('runs the scripts by SHA, loading them again when the server has lost them', async () => {
    const prefix = uniquePrefix();
    const limiter = slidingWindowLimiter(createRedisRateLimitStore(redis, { prefix }), { limit: 5, windowMs: 60_000 });
    const sha = (lua: string) => createHash('sha1').update(lua).digest('hex');
    const evalshaCalls = async () => Number(/cmdstat_evalsha:calls=(\d+)/.exec(await redis.info('commandstats'))?.[1] ?? 0);
    // Other files' scripts survive this too: ioredis answers NOSCRIPT with EVAL.
    await redis.script('FLUSH');
    expect(await limiter.consume('k')).toMatchObject({ allowed: true, remaining: 4 });
    expect(await redis.script('EXISTS', sha(SLIDING_WINDOW_LUA), sha(TOKEN_BUCKET_LUA))).toEqual([1, 0]);
    const before = await evalshaCalls();
    expect(await limiter.consume('k')).toMatchObject({ allowed: true, remaining: 3 });
    expect(await evalshaCalls()).toBeGreaterThan(before);
    await deleteByPrefix(prefix);
  });

  it('decides by the server clock with time: server, whatever the client clock says', async () => {
    const prefix = uniquePrefix();
    const clock = createFakeClock(Date.UTC(2000, 0, 1));
    const store = createRedisRateLimitStore(redis, { prefix, time: 'server', clock });
    const before = await serverNow();
    const window = await slidingWindowLimiter(store, { limit: 5, windowMs: 1000 }).consume('k');
    const bucket = await tokenBucketLimiter(store, { capacity: 5, refillPerSecond: 10 }).consume('k');
    const after = await serverNow();
    expect(window.resetAt).toBeGreaterThan(before);
    expect(window.resetAt).toBeLessThanOrEqual(after + 1000);
    expect(bucket.resetAt).toBeGreaterThanOrEqual(before + 100);
    expect(bucket.resetAt).toBeLessThanOrEqual(after + 100);
    await deleteByPrefix(prefix);
  });

  it('refuses a prefix holding a brace and an unknown time source, naming the option', () => {
    expect(() => createRedisRateLimitStore(redis, { prefix: 'rl:{x}:' })).toThrow(expect.objectContaining({ code: 'invalid_option', option: 'prefix' }));
    expect(() => createRedisRateLimitStore(redis, { time: 'local' as never })).toThrow(expect.objectContaining({ code: 'invalid_option', option: 'time' }));
  });
});

interface HammerReport {
  readonly start: number;
  readonly end: number;
  /** resetAt of each admitted call. */
  readonly admitted: number[];
  readonly refused: number;
}

/** Runs `count` hammer processes on one key, started together, and collects their reports. */
async function hammer(count: number, env: Record<string, string>): Promise<HammerReport[]> {
  const children = Array.from({ length: count }, () =>
    spawn(process.execPath, ['--import', 'tsx', HAMMER], {
      cwd: REPO_ROOT,
      env: { ...process.env, REDIS_URL: inject('redisUrl'), RL_DURATION_MS: '1500', RL_MAX_CALLS: '50000', ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    }),
  );
  try {
    const outputs = children.map((child) => {
      let out = '';
      let err = '';
      child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
      const ready = new Promise<void>((resolve, reject) => {
        const onData = () => {
          if (!out.startsWith('ready\n')) return;
          child.stdout.off('data', onData);
          resolve();
        };
        child.stdout.on('data', onData);
        child.once('exit', (code) => reject(new Error(`hammer exited with ${code} before it was ready:\n${err}`)));
      });
      const exited = new Promise<string>((resolve, reject) =>
        child.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`hammer exited with ${code}:\n${err}`)))),
      );
      void exited.catch(() => undefined); // awaited below unless a sibling fails first
      return { ready, exited };
    });
    await Promise.all(outputs.map((o) => o.ready));
    for (const child of children) child.stdin.end('go\n');
    const texts = await Promise.all(outputs.map((o) => o.exited));
    return texts.map((text) => JSON.parse(text.split('\n')[1] ?? '') as HammerReport);
  } finally {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}

describe('redis store: four processes on one key, on server time', () => {
  it('a sliding window never admits more than the limit in any fixed window', async () => {
    const prefix = uniquePrefix();
    const params = { limit: 40, windowMs: 250 };
    const reports = await hammer(4, { RL_PREFIX: prefix, RL_KEY: 'shared', RL_ALGORITHM: 'slidingWindow', RL_PARAMS: JSON.stringify(params) });
    const perWindow = new Map<number, number>();
    for (const resetAt of reports.flatMap((r) => r.admitted)) perWindow.set(resetAt, (perWindow.get(resetAt) ?? 0) + 1);
    expect(perWindow.size).toBeGreaterThanOrEqual(3);
    for (const [resetAt, count] of perWindow) {
      expect(resetAt % params.windowMs).toBe(0);
      expect(count, `window ending ${resetAt}`).toBeLessThanOrEqual(params.limit);
    }
    // The key was contended: windows filled up and callers were turned away. (A window need
    // not reach the limit exactly: the previous window's weight takes its share.)
    expect(Math.max(...perWindow.values())).toBeGreaterThanOrEqual(params.limit / 2);
    expect(reports.reduce((n, r) => n + r.refused, 0)).toBeGreaterThan(0);
    await deleteByPrefix(prefix);
  }, 30_000);

  it('a token bucket never admits more than capacity + rate * elapsed', async () => {
    const prefix = uniquePrefix();
    const params = { capacity: 20, refillPerSecond: 100 };
    const reports = await hammer(4, { RL_PREFIX: prefix, RL_KEY: 'shared', RL_ALGORITHM: 'tokenBucket', RL_PARAMS: JSON.stringify(params) });
    const admitted = reports.reduce((n, r) => n + r.admitted.length, 0);
    const elapsedSeconds = (Math.max(...reports.map((r) => r.end)) - Math.min(...reports.map((r) => r.start))) / 1000;
    expect(admitted).toBeLessThanOrEqual(params.capacity + params.refillPerSecond * elapsedSeconds + 1);
    expect(admitted).toBeGreaterThanOrEqual(params.capacity);
    expect(reports.reduce((n, r) => n + r.refused, 0)).toBeGreaterThan(0);
    await deleteByPrefix(prefix);
  }, 30_000);
});
