import type { RateLimitResult, TokenBucketParams } from './types.js';

/** A bucket's state: `tokens` (fractional) as of `ts`, ms since the epoch. */
export interface TokenBucketState {
  readonly tokens: number;
  readonly ts: number;
}

export interface TokenBucketStep {
  readonly result: RateLimitResult;
  /** The state to keep, or undefined when it did not change (a refusal changes nothing). */
  readonly next: TokenBucketState | undefined;
  /** How long the kept state matters: after that the bucket is full, the same as no state. */
  readonly ttlMs: number;
}

/**
 * One token-bucket decision, as a pure function. The Redis script `TOKEN_BUCKET_LUA` does
 * the same arithmetic in the same order, so both stores give the same answers.
 */
export function tokenBucketStep(state: TokenBucketState | undefined, params: TokenBucketParams, cost: number, now: number): TokenBucketStep {
  const { capacity, refillPerSecond: rate } = params;
  const stored = state ?? { tokens: capacity, ts: now };
  let tokens = stored.tokens;
  let ts = stored.ts;
  // A clock behind the one that wrote the state refills nothing rather than going back, and
  // its times count from the state's `ts`, so from here on ts >= now.
  if (now > ts) {
    tokens = Math.min(capacity, tokens + ((now - ts) * rate) / 1000);
    ts = now;
  }
  if (cost <= capacity && tokens >= cost) {
    tokens -= cost;
    const ttlMs = Math.max(1, fullAt(ts, tokens, capacity, rate) - now);
    return { result: { allowed: true, limit: capacity, remaining: Math.floor(tokens), resetAt: now + ttlMs, retryAfterMs: 0 }, next: { tokens, ts }, ttlMs };
  }
  let retryAfterMs = Number.POSITIVE_INFINITY;
  if (cost <= capacity) {
    // The first whole ms after `stored.ts` at which the refill above reaches `cost`, found with
    // that same expression so float rounding cannot make the advice 1 ms early or late.
    // The estimate is off by at most one either way (the limiter keeps a full refill under 2^50 ms).
    let d = Math.ceil(((cost - stored.tokens) * 1000) / rate);
    for (let i = 0; i < 2 && level(stored.tokens, d, rate) < cost; i++) d++;
    for (let i = 0; i < 2 && d > 0 && level(stored.tokens, d - 1, rate) >= cost; i++) d--;
    retryAfterMs = stored.ts + d - now;
  }
  return { result: { allowed: false, limit: capacity, remaining: Math.floor(tokens), resetAt: fullAt(ts, tokens, capacity, rate), retryAfterMs }, next: undefined, ttlMs: 0 };
}

// Module-level rather than closures in the step: this runs on every check.
/** When a bucket holding `tokens` at `ts` is full again. */
function fullAt(ts: number, tokens: number, capacity: number, rate: number): number {
  return ts + Math.ceil(((capacity - tokens) * 1000) / rate);
}

/** Tokens `d` ms after a bucket held `tokens`, by the same expression as the refill. */
function level(tokens: number, d: number, rate: number): number {
  return tokens + (d * rate) / 1000;
}
