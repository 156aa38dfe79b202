import { check, ResilienceConfigError } from './errors.js';

/**
 * How long to wait before the next try. It keeps no state between calls: the retry policy
 * hands back the previous delay, so one backoff serves any number of concurrent executions.
 * @example
 * const backoff = exponentialBackoff({ initialMs: 100, maxMs: 5_000 });
 * backoff.next(1, undefined); // somewhere in [0, 100)
 */
export interface Backoff {
  /**
   * @param attempt The try that just failed: 1 after the first failure.
   * @param previousDelayMs What this backoff returned for the previous retry of the same
   *   execution; `undefined` before the first retry.
   * @returns A delay in milliseconds, >= 0 (not necessarily a whole number).
   */
  next(attempt: number, previousDelayMs: number | undefined): number;
}

/**
 * - `none`: `min(maxMs, initialMs * multiplier^(attempt-1))`, the same for every caller.
 * - `full`: a uniform draw in `[0, that)`, which spreads callers that failed together.
 * - `decorrelated`: `min(maxMs, between(initialMs, previous * 3))`, from the AWS
 *   Architecture Blog's "Exponential Backoff And Jitter"; it ignores `multiplier`.
 * @example
 * exponentialBackoff({ initialMs: 100, maxMs: 10_000, jitter: 'decorrelated' });
 */
export type Jitter = 'none' | 'full' | 'decorrelated';

/**
 * @example
 * const options: ExponentialBackoffOptions = { initialMs: 100, maxMs: 10_000, multiplier: 3, jitter: 'full' };
 */
export interface ExponentialBackoffOptions {
  /** The delay before the first retry (before jitter). > 0. */
  initialMs: number;
  /** No delay is longer. >= `initialMs`. */
  maxMs: number;
  /** Growth per retry; >= 1. Default 2. */
  multiplier?: number;
  /** Default `full`: without jitter, clients that failed together retry together. */
  jitter?: Jitter;
}

const JITTERS: readonly string[] = ['none', 'full', 'decorrelated'] satisfies Jitter[];

/**
 * Delays that grow by `multiplier` per retry up to `maxMs`, with optional jitter.
 * @param random A source of numbers in [0, 1); injected so tests can pin the jitter.
 * @example
 * const retry = new RetryPolicy({
 *   maxAttempts: 5,
 *   backoff: exponentialBackoff({ initialMs: 50, maxMs: 2_000, jitter: 'decorrelated' }),
 * });
 */
export function exponentialBackoff(options: ExponentialBackoffOptions, random: () => number = Math.random): Backoff {
  const { initialMs, maxMs, multiplier = 2, jitter = 'full' } = options;
  check.positive('initialMs', initialMs);
  check.positive('maxMs', maxMs);
  if (maxMs < initialMs) throw new ResilienceConfigError('maxMs', `must be >= initialMs (${initialMs}), got ${maxMs}`);
  if (!(Number.isFinite(multiplier) && multiplier >= 1)) throw new ResilienceConfigError('multiplier', `must be a number >= 1, got ${multiplier}`);
  if (!JITTERS.includes(jitter)) throw new ResilienceConfigError('jitter', `must be one of ${JITTERS.join(', ')}, got ${String(jitter)}`);

  // A large attempt overflows to Infinity, which the min() turns into maxMs.
  const capped = (attempt: number) => Math.min(maxMs, initialMs * multiplier ** Math.max(0, attempt - 1));
  switch (jitter) {
    case 'none':
      return { next: (attempt) => capped(attempt) };
    case 'full':
      return { next: (attempt) => random() * capped(attempt) };
    case 'decorrelated':
      return {
        next(_attempt, previousDelayMs) {
          const previous = previousDelayMs ?? initialMs;
          return Math.min(maxMs, initialMs + random() * Math.max(0, previous * 3 - initialMs));
        },
      };
  }
}

/**
 * The same delay before every retry; `0` retries at once.
 * @example
 * const retry = new RetryPolicy({ maxAttempts: 3, backoff: constantBackoff(250) });
 */
export function constantBackoff(ms: number): Backoff {
  check.nonNegative('ms', ms);
  return { next: () => ms };
}
