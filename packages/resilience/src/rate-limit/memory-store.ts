import { systemClock, type Clock } from '../clock.js';
import { check } from '../errors.js';
import { slidingWindowStep, type SlidingWindowState } from './sliding-window.js';
import { tokenBucketStep, type TokenBucketState } from './token-bucket.js';
import type { RateLimitAlgorithm, RateLimitStore } from './types.js';

/**
 * @example
 * createMemoryRateLimitStore({ clock: createFakeClock(), maxKeys: 1000 });
 */
export interface MemoryRateLimitStoreOptions {
  /** Defaults to the system clock. */
  readonly clock?: Clock;
  /**
   * Integer >= 1, default 100 000: the most keys held. Past it the least recently used key is
   * dropped even if its state still matters, so that key may briefly get more than its limit:
   * memory stays bounded whatever callers send as keys.
   */
  readonly maxKeys?: number;
}

/**
 * A store in this process's memory, with the size and expiry it keeps.
 * @example
 * metrics.gauge('rate_limit_keys').set(store.size);
 */
export interface MemoryRateLimitStore extends RateLimitStore {
  /** Keys held, expired ones not yet swept included. */
  readonly size: number;
  /** Milliseconds until `key`'s state of `algorithm` would be dropped if left idle; undefined when none is held. */
  ttl(algorithm: RateLimitAlgorithm, key: string): number | undefined;
}

type Entry = { state: TokenBucketState | SlidingWindowState; expiresAt: number };

/** Every this many checks, up to SWEEP_STEPS of the oldest entries are looked at. */
const SWEEP_EVERY = 64;
const SWEEP_STEPS = 64;

/**
 * A store in this process's memory: one Map per algorithm. An entry is updated in place (no
 * re-insertion on the hot path); every 64 checks a sweep looks at up to 64 entries from the
 * old end, dropping the expired ones and moving live ones to the young end, so expired keys
 * are found however the live ones are interleaved. A new key past `maxKeys` pushes out the
 * oldest entry.
 * @example
 * const store = createMemoryRateLimitStore({ maxKeys: 10_000 });
 * const limiter = tokenBucketLimiter(store, { capacity: 10, refillPerSecond: 1 });
 */
export function createMemoryRateLimitStore(options: MemoryRateLimitStoreOptions = {}): MemoryRateLimitStore {
  check.positiveInt('maxKeys', options.maxKeys);
  const clock = options.clock ?? systemClock;
  const maxKeys = options.maxKeys ?? 100_000;
  const maps: Record<RateLimitAlgorithm, Map<string, Entry>> = { tokenBucket: new Map(), slidingWindow: new Map() };
  let checks = 0;

  function sweep(entries: Map<string, Entry>, now: number): void {
    let steps = 0;
    for (const [key, entry] of entries) {
      if (steps++ >= SWEEP_STEPS) return;
      entries.delete(key);
      if (entry.expiresAt > now) entries.set(key, entry);
    }
  }

  function live(entries: Map<string, Entry>, key: string, now: number): Entry | undefined {
    if ((++checks & (SWEEP_EVERY - 1)) === 0) sweep(entries, now);
    const entry = entries.get(key);
    return entry === undefined || entry.expiresAt <= now ? undefined : entry;
  }

  function store(entries: Map<string, Entry>, key: string, found: Entry | undefined, state: Entry['state'], expiresAt: number): void {
    if (found !== undefined) {
      found.state = state;
      found.expiresAt = expiresAt;
      return;
    }
    entries.set(key, { state, expiresAt });
    if (entries.size > maxKeys) {
      const oldest = entries.keys().next();
      if (oldest.done !== true) entries.delete(oldest.value);
    }
  }

  return {
    get size() {
      return maps.tokenBucket.size + maps.slidingWindow.size;
    },
    ttl(algorithm, key) {
      const now = Math.floor(clock.now());
      const entry = maps[algorithm].get(key);
      return entry === undefined || entry.expiresAt <= now ? undefined : entry.expiresAt - now;
    },
    async tokenBucket(key, params, cost) {
      const now = Math.floor(clock.now());
      const entries = maps.tokenBucket;
      const found = live(entries, key, now);
      const step = tokenBucketStep(found?.state as TokenBucketState | undefined, params, cost, now);
      if (step.next !== undefined) store(entries, key, found, step.next, now + step.ttlMs);
      return step.result;
    },
    async slidingWindow(key, params, cost) {
      const now = Math.floor(clock.now());
      const entries = maps.slidingWindow;
      const found = live(entries, key, now);
      const step = slidingWindowStep(found?.state as SlidingWindowState | undefined, params, cost, now);
      if (step.next !== undefined) store(entries, key, found, step.next, now + step.ttlMs);
      return step.result;
    },
  };
}
