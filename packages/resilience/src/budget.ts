import { systemClock, type Clock } from './clock.js';
import { check } from './errors.js';

/**
 * @example
 * // At most 20% extra load from retries, plus 5 retries a second for quiet periods.
 * const options: RetryBudgetOptions = { ratio: 0.2, minPerSecond: 5, windowMs: 10_000 };
 */
export interface RetryBudgetOptions {
  /** Retries allowed per call in the window, in (0, 1]: 0.2 lets retries add at most 20% load. */
  ratio: number;
  /**
   * Retries per second allowed on top of the ratio, so a service with little traffic can
   * still retry (at 1 call a minute, 20% would never allow one). >= 0; default 10.
   */
  minPerSecond?: number;
  /** How far back calls and retries count. > 0; default 10 000. */
  windowMs?: number;
  clock?: Clock;
}

/** The window is cut into this many buckets; it slides one bucket at a time. */
const BUCKETS = 10;
/** Absorbs float error in `ratio * calls` (0.7 * 10 is 7.000000000000001, 0.1 * 30 could fall short). */
const EPSILON = 1e-9;

/**
 * Caps retries at a share of calls, over a sliding window, like the retry budgets of
 * Finagle and linkerd. When an upstream fails hard, per-call retry limits still multiply
 * its load by `maxAttempts`; a budget keeps the extra load to `ratio`. Share one budget
 * between every retry policy that calls the same upstream.
 *
 * The window is time-bucketed and needs no timer: buckets older than the window are
 * reset when next touched.
 * @example
 * const budget = new RetryBudget({ ratio: 0.2 });
 * const retry = new RetryPolicy({ maxAttempts: 3, backoff: constantBackoff(100), budget });
 */
export class RetryBudget {
  readonly #ratio: number;
  readonly #reserve: number;
  readonly #bucketMs: number;
  readonly #clock: Clock;
  /** Per bucket: the bucket number (time / bucketMs) it holds counts for, calls, retries. */
  readonly #epochs = new Array<number>(BUCKETS).fill(-1);
  readonly #calls = new Array<number>(BUCKETS).fill(0);
  readonly #retries = new Array<number>(BUCKETS).fill(0);

  constructor(options: RetryBudgetOptions) {
    const { ratio, minPerSecond = 10, windowMs = 10_000, clock = systemClock } = options;
    check.ratio('ratio', ratio);
    check.nonNegative('minPerSecond', minPerSecond);
    check.positive('windowMs', windowMs);
    this.#ratio = ratio;
    this.#reserve = (minPerSecond * windowMs) / 1000;
    this.#bucketMs = windowMs / BUCKETS;
    this.#clock = clock;
  }

  /** Counts a call (a first try); each one lets `ratio` more retries through. */
  recordCall(): void {
    this.#calls[this.#current()]! += 1;
  }

  /** Takes one retry from the budget; `false` (and nothing taken) when it is spent. */
  tryWithdraw(): boolean {
    const slot = this.#current();
    if (this.available + EPSILON < 1) return false;
    this.#retries[slot]! += 1;
    return true;
  }

  /** Retries the budget would allow now (may be fractional). */
  get available(): number {
    const epoch = this.#epoch();
    let calls = 0;
    let retries = 0;
    for (let i = 0; i < BUCKETS; i++) {
      const held = this.#epochs[i]!;
      if (held > epoch - BUCKETS && held <= epoch) {
        calls += this.#calls[i]!;
        retries += this.#retries[i]!;
      }
    }
    return Math.max(0, this.#ratio * calls + this.#reserve - retries);
  }

  #epoch(): number {
    return Math.floor(this.#clock.now() / this.#bucketMs);
  }

  /** The slot of the current bucket, emptied first if it still holds an older bucket. */
  #current(): number {
    const epoch = this.#epoch();
    const slot = epoch % BUCKETS;
    if (this.#epochs[slot] !== epoch) {
      this.#epochs[slot] = epoch;
      this.#calls[slot] = 0;
      this.#retries[slot] = 0;
    }
    return slot;
  }
}
