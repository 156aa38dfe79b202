import { BulkheadRejectedError, check } from './errors.js';
import { EventEmitter, type Event } from './events.js';
import { contextOf, type ExecuteOptions, type Policy, type Task } from './policy.js';

/**
 * @example
 * const options: BulkheadOptions = { maxConcurrent: 10, maxQueued: 50 };
 */
export interface BulkheadOptions {
  /** Calls running at once. Integer >= 1. */
  maxConcurrent: number;
  /** Calls waiting for a slot, first in first out. Integer >= 0; default 0 (no queue). */
  maxQueued?: number;
}

interface Waiter {
  readonly start: () => void;
  readonly signal: AbortSignal | undefined;
  readonly onAbort: () => void;
}

/**
 * Caps the calls running at once, so one slow dependency cannot take every connection,
 * socket or worker. Calls beyond the cap wait in a bounded queue; beyond that they are
 * refused at once with a {@link BulkheadRejectedError} (code `bulkhead_full`) rather
 * than piling up. A queued call whose caller aborts leaves the queue.
 * @example
 * const bulkhead = new BulkheadPolicy({ maxConcurrent: 10, maxQueued: 50 });
 * bulkhead.onReject(() => metrics.bulkheadRejections.inc());
 * const feed = await bulkhead.execute(({ signal }) => timeline.read(userId, { signal }));
 */
export class BulkheadPolicy implements Policy {
  readonly #maxConcurrent: number;
  readonly #maxQueued: number;
  readonly #queue: Waiter[] = [];
  #executing = 0;
  readonly #reject = new EventEmitter<{ readonly executing: number; readonly queued: number }>();

  /** Fires when a call is refused because the bulkhead and its queue are full. */
  readonly onReject: Event<{ readonly executing: number; readonly queued: number }> = this.#reject.event;

  constructor(options: BulkheadOptions) {
    check.positiveInt('maxConcurrent', options.maxConcurrent);
    check.nonNegativeInt('maxQueued', options.maxQueued);
    this.#maxConcurrent = options.maxConcurrent;
    this.#maxQueued = options.maxQueued ?? 0;
  }

  /** Calls holding a slot. */
  get executing(): number {
    return this.#executing;
  }

  /** Calls waiting for a slot. */
  get queued(): number {
    return this.#queue.length;
  }

  async execute<T>(fn: Task<T>, options?: ExecuteOptions): Promise<T> {
    const signal = options?.signal;
    if (signal?.aborted) throw signal.reason;
    if (this.#executing < this.#maxConcurrent) this.#executing++;
    else if (this.#queue.length < this.#maxQueued) await this.#wait(signal);
    else {
      this.#reject.emit({ executing: this.#executing, queued: this.#queue.length });
      throw new BulkheadRejectedError(this.#maxConcurrent, this.#maxQueued);
    }
    try {
      return await fn(contextOf(options));
    } finally {
      this.#release();
    }
  }

  /** Resolves once a finishing call hands this one its slot. */
  #wait(signal: AbortSignal | undefined): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        start: resolve,
        signal,
        onAbort: () => {
          this.#queue.splice(this.#queue.indexOf(waiter), 1);
          reject(signal?.reason);
        },
      };
      this.#queue.push(waiter);
      signal?.addEventListener('abort', waiter.onAbort, { once: true });
    });
  }

  /**
   * Hands the slot straight to the next waiter instead of freeing it: freed, it could be
   * taken by a new call before the waiter's continuation runs, and the cap would be exceeded.
   */
  #release(): void {
    const next = this.#queue.shift();
    if (next === undefined) {
      this.#executing--;
      return;
    }
    next.signal?.removeEventListener('abort', next.onAbort);
    next.start();
  }
}
