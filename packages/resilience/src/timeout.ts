import { systemClock, type Clock } from './clock.js';
import { check, ResilienceConfigError, TaskTimeoutError } from './errors.js';
import { EventEmitter, type Event } from './events.js';
import { contextOf, type ExecuteOptions, type Policy, type Task } from './policy.js';

/**
 * - `cooperative`: at the deadline the function's signal aborts and the policy waits for
 *   the function to settle. The function decides: if it rejects, the call fails with a
 *   {@link TaskTimeoutError}; if it resolves anyway, its value is returned.
 * - `aggressive`: at the deadline the call fails with a {@link TaskTimeoutError} at once,
 *   even if the function ignores its signal. The function keeps running in the background
 *   (its late result is dropped), so prefer `cooperative` for work that honours signals.
 *   Likewise a caller abort rejects at once, with the caller's reason.
 * @example
 * new TimeoutPolicy({ ms: 500, strategy: 'aggressive' });
 */
export type TimeoutStrategy = 'cooperative' | 'aggressive';

/**
 * @example
 * const options: TimeoutOptions = { ms: 2_000, strategy: 'cooperative', clock: createFakeClock() };
 */
export interface TimeoutOptions {
  /** The deadline, from the start of `execute`. > 0. */
  ms: number;
  strategy: TimeoutStrategy;
  clock?: Clock;
}

const STRATEGIES: readonly string[] = ['cooperative', 'aggressive'] satisfies TimeoutStrategy[];

/**
 * Bounds how long a call may take. The function gets a signal that aborts at the deadline
 * (with the {@link TaskTimeoutError} as its reason) or when the caller's signal aborts.
 * The timer is cleared, and the listener on the caller's signal removed, as soon as the
 * call settles, so a long-lived caller signal does not collect listeners.
 * @example
 * const timeout = new TimeoutPolicy({ ms: 2_000, strategy: 'cooperative' });
 * timeout.onTimeout(({ ms }) => metrics.timeouts.inc({ ms }));
 * const res = await timeout.execute(({ signal }) => fetch(url, { signal }), { signal: request.signal });
 */
export class TimeoutPolicy implements Policy {
  readonly #ms: number;
  readonly #strategy: TimeoutStrategy;
  readonly #clock: Clock;
  readonly #timeout = new EventEmitter<{ readonly ms: number }>();

  /** Fires when a deadline passes before the function settled. */
  readonly onTimeout: Event<{ readonly ms: number }> = this.#timeout.event;

  constructor(options: TimeoutOptions) {
    check.positive('ms', options.ms);
    if (!STRATEGIES.includes(options.strategy)) throw new ResilienceConfigError('strategy', `must be one of ${STRATEGIES.join(', ')}, got ${String(options.strategy)}`);
    this.#ms = options.ms;
    this.#strategy = options.strategy;
    this.#clock = options.clock ?? systemClock;
  }

  async execute<T>(fn: Task<T>, options?: ExecuteOptions): Promise<T> {
    const caller = options?.signal;
    // Work the caller has already given up on is not started.
    if (caller?.aborted) throw caller.reason;

    const inner = new AbortController();
    // Made only when the deadline passes: most calls finish in time.
    let deadline: TaskTimeoutError | undefined;
    const timer = this.#clock.setTimeout(() => {
      deadline = new TaskTimeoutError(this.#ms);
      this.#timeout.emit({ ms: this.#ms });
      inner.abort(deadline);
    }, this.#ms);
    // A caller abort is not a timeout: stop the timer so it cannot relabel the failure.
    const onCallerAbort = () => {
      this.#clock.clearTimeout(timer);
      inner.abort(caller?.reason);
    };
    caller?.addEventListener('abort', onCallerAbort, { once: true });

    try {
      // Called synchronously, and a synchronous throw becomes a rejection.
      const running = new Promise<T>((resolve) => resolve(fn(contextOf(options, inner.signal))));
      if (this.#strategy === 'aggressive') return await raceAbort(running, inner.signal);
      try {
        return await running;
      } catch (err) {
        if (deadline === undefined || err === deadline) throw err;
        throw new TaskTimeoutError(deadline.timeoutMs, { cause: err });
      }
    } finally {
      this.#clock.clearTimeout(timer);
      caller?.removeEventListener('abort', onCallerAbort);
    }
  }
}

/** Settles with `running`, or rejects with the signal's reason when it aborts first. */
function raceAbort<T>(running: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    // These handlers also keep a rejection that comes after the abort from being unhandled.
    running.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
