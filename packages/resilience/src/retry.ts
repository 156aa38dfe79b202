import type { Backoff } from './backoff.js';
import type { RetryBudget } from './budget.js';
import { sleep, systemClock, type Clock } from './clock.js';
import { check } from './errors.js';
import { EventEmitter, type Event } from './events.js';
import { contextOf, type ExecuteOptions, type Policy, type Task } from './policy.js';

/**
 * @example
 * const options: RetryOptions = {
 *   maxAttempts: 3,
 *   backoff: exponentialBackoff({ initialMs: 100, maxMs: 2_000 }),
 *   shouldRetry: (err) => !(err instanceof ValidationError),
 *   maxDelayMs: 10_000,
 * };
 */
export interface RetryOptions {
  /** Tries in all, the first included: 1 never retries. Integer >= 1. */
  maxAttempts: number;
  /** The wait before each retry. */
  backoff: Backoff;
  /**
   * Whether a failure is worth another try; `attempt` is the try that failed (1 = the first).
   * Default {@link isRetryable}: every error except one flagged `retryable: false`.
   */
  shouldRetry?: (err: unknown, attempt: number) => boolean;
  /**
   * A wait the upstream asked for (a Retry-After header, see {@link parseRetryAfter}). The
   * retry then waits the longer of this and the backoff, capped by `maxDelayMs`.
   */
  retryAfterMs?: (err: unknown) => number | undefined;
  /** No wait is longer, whatever the backoff or the upstream says. > 0; default 60 000. */
  maxDelayMs?: number;
  /** Shared cap on retries across calls; without it, only `maxAttempts` limits them. */
  budget?: RetryBudget;
  clock?: Clock;
}

/**
 * What {@link RetryPolicy.onRetry} reports before each wait.
 * @example
 * retry.onRetry(({ attempt, delayMs, error }) => log.warn({ attempt, delayMs, err: error }, 'retrying'));
 */
export interface RetryEvent {
  /** The try that failed; the next one is `attempt + 1`. */
  readonly attempt: number;
  readonly delayMs: number;
  readonly error: unknown;
}

/**
 * Why an execution failed for good: tries used up, retry budget spent, an error the filter
 * refused, or the caller's signal aborted.
 * @example
 * retry.onGiveUp(({ reason }) => metrics.retryGiveUps.inc({ reason }));
 */
export type GiveUpReason = 'attempts' | 'budget' | 'not-retryable' | 'aborted';

/**
 * What {@link RetryPolicy.onGiveUp} reports, once per failed execution.
 * @example
 * retry.onGiveUp(({ attempts, reason }) => log.error({ attempts, reason }, 'giving up'));
 */
export interface GiveUpEvent {
  /** Tries made. */
  readonly attempts: number;
  /** The last failure; the one rethrown, except on `aborted` during a wait (the signal's reason is). */
  readonly error: unknown;
  readonly reason: GiveUpReason;
}

/**
 * The default retry filter: an error flagged `retryable: true` or not flagged at all is
 * retried; one flagged `retryable: false` (a validation error, a 404) never is. Errors are
 * retried unless they say otherwise because most failures that reach a retry policy
 * (resets, timeouts, 503s) are transient, and what is not can say so.
 * @example
 * isRetryable(Object.assign(new Error('bad input'), { retryable: false })); // false
 */
export function isRetryable(err: unknown): boolean {
  return !(typeof err === 'object' && err !== null && (err as { retryable?: unknown }).retryable === false);
}

/**
 * Runs a function again when it fails, waiting between tries, until it succeeds, the
 * tries run out, the error is not retryable, the budget refuses or the caller aborts.
 * It then rethrows the last error as it is, so callers see what went wrong.
 * @example
 * const retry = new RetryPolicy({
 *   maxAttempts: 4,
 *   backoff: exponentialBackoff({ initialMs: 100, maxMs: 2_000 }),
 *   retryAfterMs: (err) => parseRetryAfter((err as UpstreamError).retryAfter, Date.now()),
 *   budget: sharedBudget,
 * });
 * retry.onRetry(({ attempt, delayMs }) => log.warn({ attempt, delayMs }, 'retrying'));
 * const user = await retry.execute(({ signal }) => users.get(id, { signal }));
 */
export class RetryPolicy implements Policy {
  readonly #maxAttempts: number;
  readonly #backoff: Backoff;
  readonly #retryAfterMs: ((err: unknown) => number | undefined) | undefined;
  readonly #budget: RetryBudget | undefined;
  readonly #shouldRetry: (err: unknown, attempt: number) => boolean;
  readonly #maxDelayMs: number;
  readonly #clock: Clock;
  readonly #retry = new EventEmitter<RetryEvent>();
  readonly #giveUp = new EventEmitter<GiveUpEvent>();
  readonly #success = new EventEmitter<{ readonly attempts: number }>();

  /** Fires before each wait. */
  readonly onRetry: Event<RetryEvent> = this.#retry.event;
  /** Fires once when an execution fails for good. */
  readonly onGiveUp: Event<GiveUpEvent> = this.#giveUp.event;
  /** Fires when an execution succeeds; `attempts` is 1 when no retry was needed. */
  readonly onSuccess: Event<{ readonly attempts: number }> = this.#success.event;

  constructor(options: RetryOptions) {
    check.positiveInt('maxAttempts', options.maxAttempts);
    check.positive('maxDelayMs', options.maxDelayMs);
    this.#maxAttempts = options.maxAttempts;
    this.#backoff = options.backoff;
    this.#retryAfterMs = options.retryAfterMs;
    this.#budget = options.budget;
    this.#shouldRetry = options.shouldRetry ?? isRetryable;
    this.#maxDelayMs = options.maxDelayMs ?? 60_000;
    this.#clock = options.clock ?? systemClock;
  }

  async execute<T>(fn: Task<T>, options?: ExecuteOptions): Promise<T> {
    // Without a caller signal, each try gets a context whose signal is made only if read.
    const signal = options?.signal;
    this.#budget?.recordCall();
    let previousDelayMs: number | undefined;
    for (let attempt = 1; ; attempt++) {
      try {
        const result = await fn(contextOf({ signal, attempt }));
        if (this.#success.size > 0) this.#success.emit({ attempts: attempt });
        return result;
      } catch (error) {
        const reason = this.#stopReason(error, attempt, signal);
        if (reason !== undefined) {
          this.#giveUp.emit({ attempts: attempt, error, reason });
          throw error;
        }

        previousDelayMs = this.#backoff.next(attempt, previousDelayMs);
        const asked = this.#retryAfterMs?.(error);
        const wanted = asked !== undefined && Number.isFinite(asked) ? Math.max(previousDelayMs, asked) : previousDelayMs;
        const delayMs = Math.min(this.#maxDelayMs, Math.max(0, wanted));
        this.#retry.emit({ attempt, delayMs, error });
        try {
          // No timer for a zero wait, but an abort still ends the execution.
          if (delayMs > 0) await sleep(this.#clock, delayMs, signal);
          else if (signal?.aborted === true) throw signal.reason;
        } catch (abortReason) {
          this.#giveUp.emit({ attempts: attempt, error, reason: 'aborted' });
          throw abortReason;
        }
      }
    }
  }

  /** Why a failed try is the last one, or `undefined` to retry. Takes from the budget last, only for a retry that will happen. */
  #stopReason(error: unknown, attempt: number, signal: AbortSignal | undefined): GiveUpReason | undefined {
    if (signal?.aborted === true) return 'aborted';
    if (!this.#shouldRetry(error, attempt)) return 'not-retryable';
    if (attempt >= this.#maxAttempts) return 'attempts';
    if (this.#budget !== undefined && !this.#budget.tryWithdraw()) return 'budget';
    return undefined;
  }
}
