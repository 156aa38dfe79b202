/**
 * Rolling windows of call outcomes for the circuit breaker's failure rate. Both keep running
 * totals, so recording an outcome and reading the rate are O(1) (amortised for the time
 * window) and allocate nothing: one breaker lives per upstream instance, on every request.
 */

/** Calls and failures over the last stretch of calls or of time. */
export interface RollingWindow {
  /** Whether `record` reads its `now`; a count window does not, so the caller can skip the clock. */
  readonly usesTime: boolean;
  /** Calls recorded in the window, as of the last `record` or `expire`. */
  readonly calls: number;
  /** Failures among them. */
  readonly failures: number;
  /** Records one outcome at clock time `now` (milliseconds). */
  record(failed: boolean, now: number): void;
  /** Drops what has fallen out of the window by `now`; a count window ignores time. */
  expire(now: number): void;
  /** Forgets every outcome. */
  clear(): void;
}

/**
 * The last `size` outcomes, in a ring buffer.
 * @example
 * const window = new CountWindow(3);
 * window.record(true, 0);
 * window.record(false, 0);
 * window.failures / window.calls; // 0.5
 */
export class CountWindow implements RollingWindow {
  readonly usesTime = false;
  readonly #ring: Uint8Array;
  #next = 0;
  #calls = 0;
  #failures = 0;

  constructor(readonly size: number) {
    this.#ring = new Uint8Array(size);
  }

  get calls(): number {
    return this.#calls;
  }

  get failures(): number {
    return this.#failures;
  }

  record(failed: boolean, _now: number): void {
    const slot = this.#next;
    // A full ring overwrites its oldest outcome, which leaves the totals with it.
    if (this.#calls === this.size) this.#failures -= this.#ring[slot] ?? 0;
    else this.#calls++;
    const bit = failed ? 1 : 0;
    this.#ring[slot] = bit;
    this.#failures += bit;
    this.#next = slot + 1 === this.size ? 0 : slot + 1;
  }

  expire(_now: number): void {
    // Outcomes leave a count window only when newer ones push them out.
  }

  clear(): void {
    this.#ring.fill(0);
    this.#next = 0;
    this.#calls = 0;
    this.#failures = 0;
  }
}

/**
 * Outcomes of the last `ms` milliseconds, in `buckets` buckets of `ms / buckets` each. Buckets
 * are aligned to multiples of their width and dropped as the clock passes them, so the window
 * covers between `ms - ms / buckets` and `ms` of history. No timers: expiry happens when the
 * window is next touched, clearing at most `buckets` slots however long it sat idle.
 * @example
 * const window = new TimeWindow(10_000, 10); // ten buckets of one second
 * window.record(true, clock.now());
 * window.expire(clock.now() + 10_000);
 * window.calls; // 0: the failure has expired
 */
export class TimeWindow implements RollingWindow {
  readonly usesTime = true;
  readonly #width: number;
  readonly #successes: Float64Array;
  readonly #failed: Float64Array;
  /** Number (time / width) of the newest bucket; -Infinity until the first outcome. */
  #head = Number.NEGATIVE_INFINITY;
  #calls = 0;
  #failures = 0;

  constructor(
    readonly ms: number,
    readonly buckets: number,
  ) {
    this.#width = ms / buckets;
    this.#successes = new Float64Array(buckets);
    this.#failed = new Float64Array(buckets);
  }

  get calls(): number {
    return this.#calls;
  }

  get failures(): number {
    return this.#failures;
  }

  record(failed: boolean, now: number): void {
    this.expire(now);
    const slot = this.#slotOf(this.#head);
    if (failed) {
      this.#failed[slot] = (this.#failed[slot] ?? 0) + 1;
      this.#failures++;
    } else {
      this.#successes[slot] = (this.#successes[slot] ?? 0) + 1;
    }
    this.#calls++;
  }

  expire(now: number): void {
    const id = Math.floor(now / this.#width);
    // A clock that steps back keeps writing into the newest bucket rather than reviving old ones.
    if (id <= this.#head) return;
    const steps = Math.min(id - this.#head, this.buckets);
    for (let i = 1; i <= steps; i++) {
      const slot = this.#slotOf(id - steps + i);
      const failed = this.#failed[slot] ?? 0;
      this.#calls -= failed + (this.#successes[slot] ?? 0);
      this.#failures -= failed;
      this.#failed[slot] = 0;
      this.#successes[slot] = 0;
    }
    this.#head = id;
  }

  clear(): void {
    this.#successes.fill(0);
    this.#failed.fill(0);
    this.#head = Number.NEGATIVE_INFINITY;
    this.#calls = 0;
    this.#failures = 0;
  }

  #slotOf(id: number): number {
    // Stays in range for a clock before the epoch, where `%` goes negative.
    return ((id % this.buckets) + this.buckets) % this.buckets;
  }
}
