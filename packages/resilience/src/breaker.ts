import type { Clock } from './clock.js';
import { systemClock } from './clock.js';
import type { RollingWindow } from './breaker-window.js';
import { CountWindow, TimeWindow } from './breaker-window.js';
import { BrokenCircuitError, ResilienceConfigError, check } from './errors.js';
import type { Disposable, Event } from './events.js';
import { EventEmitter } from './events.js';
import type { ExecuteOptions, Policy, Task } from './policy.js';
import { contextOf } from './policy.js';

/**
 * Where a circuit stands. `isolated` is open by hand, until `reset()` or the isolation is disposed.
 * @example
 * if (breaker.state === 'open') res.setHeader('retry-after', '30');
 */
export type CircuitState = 'closed' | 'open' | 'half-open' | 'isolated';

/**
 * Why the state changed, as given on {@link CircuitBreaker.onStateChange}.
 * @example
 * breaker.onStateChange(({ reason }) => reason === 'failure-rate' && alert(reason));
 */
export type CircuitStateChangeReason =
  /** `consecutiveFailures` failures in a row. */
  | 'consecutive-failures'
  /** The failure rate over the window reached `failureRate.threshold`. */
  | 'failure-rate'
  /** `openMs` passed and a call came: it goes through as a trial. */
  | 'open-elapsed'
  /** A trial call failed: open again for a fresh `openMs`. */
  | 'trial-failure'
  /** `halfOpenSuccesses` trial calls succeeded. */
  | 'trial-successes'
  /** `isolate()` was called. */
  | 'isolated'
  /** The last isolation handle was disposed. */
  | 'isolation-released'
  /** `reset()` was called. */
  | 'reset';

/**
 * @example
 * breaker.onStateChange(({ from, to, reason }) => log.warn({ from, to, reason }, 'circuit changed'));
 */
export interface CircuitStateChange {
  readonly from: CircuitState;
  readonly to: CircuitState;
  readonly reason: CircuitStateChangeReason;
}

/**
 * @example
 * breaker.onSuccess(({ durationMs }) => histogram.observe(durationMs / 1000));
 */
export interface CircuitSuccessEvent {
  readonly durationMs: number;
}

/**
 * A call that counted as a failure: it threw (`kind: 'error'`) or returned a result that
 * `isResultFailure` rejected (`kind: 'result'`; the caller still got the result).
 * @example
 * breaker.onFailure((f) => log.warn(f.kind === 'error' ? { err: f.error } : { status: f.result.status }));
 */
export type CircuitFailureEvent =
  | { readonly kind: 'error'; readonly error: unknown; readonly durationMs: number }
  | { readonly kind: 'result'; readonly result: unknown; readonly durationMs: number };

/**
 * A call refused without being made; the caller got a `BrokenCircuitError` with the same `retryAt`.
 * @example
 * breaker.onReject(({ isolated }) => rejected.inc({ isolated: String(isolated) }));
 */
export interface CircuitRejectEvent {
  /** When a call may go through: `openedAt + openMs` when open, now when half-open, +Infinity when isolated. */
  readonly retryAt: number;
  readonly isolated: boolean;
}

/**
 * The window a failure rate is computed over: the last `size` calls, or the last `ms`
 * milliseconds in `buckets` buckets (default 10; the window covers `ms` less up to one bucket).
 * @example
 * const byCount: FailureRateWindow = { kind: 'count', size: 100 };
 * const byTime: FailureRateWindow = { kind: 'time', ms: 30_000, buckets: 30 };
 */
export type FailureRateWindow = { readonly kind: 'count'; readonly size: number } | { readonly kind: 'time'; readonly ms: number; readonly buckets?: number };

/**
 * Trip when, over the window, `failures / calls >= threshold` and `calls >= minimumCalls`.
 * @example
 * const failureRate: FailureRateOptions = { threshold: 0.5, minimumCalls: 20, window: { kind: 'time', ms: 10_000 } };
 */
export interface FailureRateOptions {
  /** In (0, 1]. */
  readonly threshold: number;
  /** At least 1 (and at most a count window's `size`): no trip on fewer calls than this. */
  readonly minimumCalls: number;
  readonly window: FailureRateWindow;
}

/**
 * Give `consecutiveFailures`, `failureRate` or both (either trips).
 * @example
 * const options: CircuitBreakerOptions = {
 *   name: 'billing',
 *   consecutiveFailures: 5,
 *   failureRate: { threshold: 0.5, minimumCalls: 20, window: { kind: 'count', size: 100 } },
 *   openMs: 30_000,
 *   isResultFailure: (res) => (res as Response).status >= 500,
 * };
 */
export interface CircuitBreakerOptions {
  /** Trip after this many failures in a row (integer >= 1). */
  readonly consecutiveFailures?: number;
  readonly failureRate?: FailureRateOptions;
  /** How long the circuit stays open before a trial call may go through (> 0). */
  readonly openMs: number;
  /** Trial calls admitted at once while half-open (default 1); the rest are refused. */
  readonly halfOpenMaxCalls?: number;
  /** Trial successes that close the circuit (default `halfOpenMaxCalls`); one trial failure reopens it. */
  readonly halfOpenSuccesses?: number;
  /**
   * Which errors count as failures of the upstream (default: all). The others are rethrown
   * and recorded as nothing, neither failure nor success, like cockatiel's `handleWhen`.
   */
  readonly isFailure?: (error: unknown) => boolean;
  /** Counts a result as a failure (a 503 response, say); the caller still gets the result. */
  readonly isResultFailure?: (result: unknown) => boolean;
  readonly clock?: Clock;
  /** Shown in snapshots, for `/admin/circuits` and metrics labels. */
  readonly name?: string;
}

/**
 * A circuit for `/admin/circuits`. `window` is there when `failureRate` is configured;
 * `openedAt` and `retryAt` only while open (an isolated circuit has no retry time).
 * @example
 * app.get('/admin/circuits', () => breakers.map((b) => b.snapshot()));
 */
export interface CircuitSnapshot {
  readonly name: string | undefined;
  readonly state: CircuitState;
  /** Consecutive failures so far (kept while open, cleared when the circuit closes). */
  readonly failures: number;
  readonly window?: { readonly calls: number; readonly failures: number; readonly rate: number };
  readonly openedAt?: number;
  readonly retryAt?: number;
}

/**
 * A circuit breaker: after too many failures it refuses calls for `openMs`, then lets up to
 * `halfOpenMaxCalls` trial calls through at once, closing after `halfOpenSuccesses` of them
 * succeed and reopening on any trial failure.
 *
 * No timers: the open → half-open step is taken by the first call after `openMs`, and
 * `state` reports `half-open` from then on even before that call (its `onStateChange` fires
 * with that call). One breaker per upstream instance is cheap.
 *
 * Outcomes are recorded against the state period the call started in: a call that finishes
 * after the circuit changed state (or was reset or isolated) changes nothing. So a slow
 * success from before a trip never closes the circuit, and `halfOpenMaxCalls` bounds the
 * trials of the current half-open period only; bound older stragglers with a timeout
 * inside the breaker.
 *
 * A call whose error arrives after the caller's `signal` aborted counts as nothing: the
 * caller gave up, which says nothing about the upstream. Put a timeout policy inside the
 * breaker (`wrap(breaker, timeout)`) to count slow calls; outside it, its abort is the
 * caller's.
 * @example
 * const breaker = new CircuitBreaker({ name: 'billing', consecutiveFailures: 5, openMs: 30_000 });
 * breaker.onStateChange(({ from, to, reason }) => log.warn({ from, to, reason }, 'billing circuit'));
 * try {
 *   await breaker.execute(({ signal }) => fetch(url, { signal }), { signal: request.signal });
 * } catch (err) {
 *   if (isBrokenCircuitError(err)) return reply.code(503).header('retry-after', secondsUntil(err.retryAt));
 *   throw err;
 * }
 */
export class CircuitBreaker implements Policy {
  readonly name: string | undefined;

  readonly #clock: Clock;
  readonly #openMs: number;
  readonly #consecutiveLimit: number;
  readonly #window: RollingWindow | undefined;
  readonly #threshold: number;
  readonly #minimumCalls: number;
  readonly #halfOpenMaxCalls: number;
  readonly #halfOpenSuccesses: number;
  readonly #isFailure: ((error: unknown) => boolean) | undefined;
  readonly #isResultFailure: ((result: unknown) => boolean) | undefined;

  #state: CircuitState = 'closed';
  /** Bumped on every transition and reset; a call's outcome counts only in the period it started in. */
  #epoch = 0;
  #consecutive = 0;
  #openedAt = 0;
  #retryAt = 0;
  #trials = 0;
  #trialSuccesses = 0;
  #isolations = 0;
  /** Bumped by reset(), so isolation handles from before it release nothing. */
  #isolationGeneration = 0;

  readonly #stateChanged = new EventEmitter<CircuitStateChange>();
  readonly #succeeded = new EventEmitter<CircuitSuccessEvent>();
  readonly #failed = new EventEmitter<CircuitFailureEvent>();
  readonly #rejected = new EventEmitter<CircuitRejectEvent>();

  /** Every state change, fired after the state has changed. */
  readonly onStateChange: Event<CircuitStateChange> = this.#stateChanged.event;
  /**
   * A call that counted as a success (closed or trial). Only calls that started while an
   * `onSuccess` or `onFailure` listener was subscribed are timed, so only those are reported.
   */
  readonly onSuccess: Event<CircuitSuccessEvent> = this.#succeeded.event;
  /**
   * A call that counted as a failure, fired before the state change it may cause. Like
   * `onSuccess`, only for calls that started while someone listened.
   */
  readonly onFailure: Event<CircuitFailureEvent> = this.#failed.event;
  /** A call refused without being made. */
  readonly onReject: Event<CircuitRejectEvent> = this.#rejected.event;

  constructor(options: CircuitBreakerOptions) {
    const { consecutiveFailures, failureRate, openMs, halfOpenMaxCalls = 1, isFailure, isResultFailure, clock = systemClock } = options;
    const halfOpenSuccesses = options.halfOpenSuccesses ?? halfOpenMaxCalls;
    if (consecutiveFailures === undefined && failureRate === undefined) {
      throw new ResilienceConfigError('consecutiveFailures|failureRate', 'give at least one of consecutiveFailures and failureRate');
    }
    check.positiveInt('consecutiveFailures', consecutiveFailures);
    required('openMs', openMs);
    check.positive('openMs', openMs);
    check.positiveInt('halfOpenMaxCalls', halfOpenMaxCalls);
    check.positiveInt('halfOpenSuccesses', halfOpenSuccesses);
    callable('isFailure', isFailure);
    callable('isResultFailure', isResultFailure);
    if (typeof clock?.now !== 'function') throw new ResilienceConfigError('clock', 'must be a Clock with now()');

    this.name = options.name;
    this.#clock = clock;
    this.#openMs = openMs;
    // No consecutive limit when only a failure rate is configured: the counter never reaches it.
    this.#consecutiveLimit = consecutiveFailures ?? Number.POSITIVE_INFINITY;
    this.#window = failureRate === undefined ? undefined : windowOf(failureRate);
    this.#threshold = failureRate?.threshold ?? 1;
    this.#minimumCalls = failureRate?.minimumCalls ?? 1;
    this.#halfOpenMaxCalls = halfOpenMaxCalls;
    this.#halfOpenSuccesses = halfOpenSuccesses;
    this.#isFailure = isFailure;
    this.#isResultFailure = isResultFailure;
  }

  /** The state now; an open circuit whose `openMs` has passed reports `half-open`. */
  get state(): CircuitState {
    return this.#state === 'open' && this.#clock.now() >= this.#retryAt ? 'half-open' : this.#state;
  }

  /**
   * Runs `fn` if the circuit lets it through, recording its outcome; otherwise rejects with a
   * {@link BrokenCircuitError} without calling it.
   * @example
   * const user = await breaker.execute(({ signal }) => users.get(id, { signal }));
   */
  async execute<T>(fn: Task<T>, options?: ExecuteOptions): Promise<T> {
    // The clock is read only when needed: Date.now() can cost as much as the rest of a closed,
    // successful call. So durations are measured for calls that start while someone listens.
    const start = this.#succeeded.size > 0 || this.#failed.size > 0 ? this.#clock.now() : undefined;
    if (this.#state !== 'closed') this.#admit(start ?? this.#clock.now());
    const epoch = this.#epoch;
    const signal = options?.signal;
    let result: T;
    try {
      result = await fn(contextOf(options));
    } catch (error) {
      this.#settleError(error, signal, epoch, start);
      throw error;
    }
    if (this.#isResultFailure === undefined) this.#recordSuccess(epoch, start);
    else this.#settleResult(result, epoch, start);
    return result;
  }

  /**
   * Holds the circuit open (calls fail with `BrokenCircuitError(+Infinity, isolated: true)`)
   * until every handle is disposed or `reset()` is called; then it closes, windows cleared.
   * @example
   * const maintenance = breaker.isolate();
   * await migrateUpstream();
   * maintenance.dispose();
   */
  isolate(): Disposable {
    const generation = this.#isolationGeneration;
    this.#isolations++;
    if (this.#state !== 'isolated') this.#transition('isolated', 'isolated');
    let released = false;
    return {
      dispose: () => {
        if (released || generation !== this.#isolationGeneration) return;
        released = true;
        if (--this.#isolations === 0) this.#transition('closed', 'isolation-released');
      },
    };
  }

  /**
   * Closes the circuit and forgets every outcome, releasing any isolation. Calls still in
   * flight no longer count.
   * @example
   * adminRoutes.post('/admin/circuits/billing/reset', () => breaker.reset());
   */
  reset(): void {
    this.#isolations = 0;
    this.#isolationGeneration++;
    this.#transition('closed', 'reset');
  }

  /**
   * The circuit as `/admin/circuits` shows it.
   * @example
   * breaker.snapshot(); // { name: 'billing', state: 'open', failures: 5, openedAt: 1767225600000, retryAt: 1767225630000 }
   */
  snapshot(): CircuitSnapshot {
    const now = this.#clock.now();
    const state = this.state;
    const w = this.#window;
    w?.expire(now);
    return {
      name: this.name,
      state,
      failures: this.#consecutive,
      ...(w && { window: { calls: w.calls, failures: w.failures, rate: w.calls === 0 ? 0 : w.failures / w.calls } }),
      ...(state === 'open' && { openedAt: this.#openedAt, retryAt: this.#retryAt }),
    };
  }

  /** Lets a call through a circuit that is not closed, or throws; takes a trial slot when half-open. */
  #admit(now: number): void {
    if (this.#state === 'open') {
      if (now < this.#retryAt) this.#refuse(this.#retryAt, false);
      this.#transition('half-open', 'open-elapsed');
    }
    // Checked again: a listener of the change above may have reset or isolated the circuit.
    if (this.#state === 'half-open') {
      if (this.#trials >= this.#halfOpenMaxCalls) this.#refuse(now, false);
      this.#trials++;
    } else if (this.#state === 'isolated') {
      this.#refuse(Number.POSITIVE_INFINITY, true);
    }
  }

  #refuse(retryAt: number, isolated: boolean): never {
    if (this.#rejected.size > 0) this.#rejected.emit({ retryAt, isolated });
    throw new BrokenCircuitError(retryAt, isolated);
  }

  #settleError(error: unknown, signal: AbortSignal | undefined, epoch: number, start: number | undefined): void {
    if (signal?.aborted === true) return this.#recordNothing(epoch);
    let counts = true;
    if (this.#isFailure !== undefined) {
      try {
        counts = this.#isFailure(error);
      } catch (predicateError) {
        // A throwing filter must not leak a trial slot, or the circuit would stay half-open, full, for good.
        this.#recordNothing(epoch);
        throw predicateError;
      }
    }
    if (counts) this.#recordFailure(epoch, start, error, 'error');
    else this.#recordNothing(epoch);
  }

  #settleResult(result: unknown, epoch: number, start: number | undefined): void {
    let failed: boolean;
    try {
      failed = this.#isResultFailure?.(result) === true;
    } catch (predicateError) {
      this.#recordNothing(epoch);
      throw predicateError;
    }
    if (failed) this.#recordFailure(epoch, start, result, 'result');
    else this.#recordSuccess(epoch, start);
  }

  #recordSuccess(epoch: number, start: number | undefined): void {
    if (start !== undefined && this.#succeeded.size > 0) this.#succeeded.emit({ durationMs: this.#clock.now() - start });
    if (epoch !== this.#epoch) return;
    if (this.#state === 'closed') {
      this.#consecutive = 0;
      const w = this.#window;
      if (w !== undefined) w.record(false, w.usesTime ? this.#clock.now() : 0);
      return;
    }
    // A matching epoch that is not closed is a half-open trial: open and isolated admit nothing.
    this.#trials--;
    if (++this.#trialSuccesses >= this.#halfOpenSuccesses) this.#transition('closed', 'trial-successes');
  }

  #recordFailure(epoch: number, start: number | undefined, cause: unknown, kind: 'error' | 'result'): void {
    const now = this.#clock.now();
    if (start !== undefined && this.#failed.size > 0) {
      const durationMs = now - start;
      this.#failed.emit(kind === 'error' ? { kind, error: cause, durationMs } : { kind, result: cause, durationMs });
    }
    if (epoch !== this.#epoch) return;
    if (this.#state === 'half-open') return this.#open(now, 'trial-failure');
    const w = this.#window;
    w?.record(true, now);
    // The rate is checked on failures only: a success never opens the circuit.
    if (++this.#consecutive >= this.#consecutiveLimit) this.#open(now, 'consecutive-failures');
    else if (w !== undefined && w.calls >= this.#minimumCalls && w.failures / w.calls >= this.#threshold) this.#open(now, 'failure-rate');
  }

  /** An outcome that says nothing about the upstream: it only gives back its trial slot. */
  #recordNothing(epoch: number): void {
    if (epoch === this.#epoch && this.#state === 'half-open') this.#trials--;
  }

  #open(now: number, reason: CircuitStateChangeReason): void {
    this.#openedAt = now;
    this.#retryAt = now + this.#openMs;
    this.#transition('open', reason);
  }

  #transition(to: CircuitState, reason: CircuitStateChangeReason): void {
    const from = this.#state;
    this.#state = to;
    this.#epoch++;
    if (to === 'closed') {
      this.#consecutive = 0;
      this.#window?.clear();
    } else if (to === 'half-open') {
      this.#trials = 0;
      this.#trialSuccesses = 0;
    }
    if (from !== to) this.#stateChanged.emit({ from, to, reason });
  }
}

function required(option: string, value: unknown): void {
  if (value === undefined || value === null) throw new ResilienceConfigError(option, 'is required');
}

function callable(option: string, value: unknown): void {
  if (value !== undefined && typeof value !== 'function') throw new ResilienceConfigError(option, `must be a function, got ${typeof value}`);
}

function windowOf(rate: FailureRateOptions): RollingWindow {
  if (typeof rate !== 'object' || rate === null) throw new ResilienceConfigError('failureRate', 'must be an object');
  const { threshold, minimumCalls, window } = rate;
  required('failureRate.threshold', threshold);
  check.ratio('failureRate.threshold', threshold);
  required('failureRate.minimumCalls', minimumCalls);
  check.positiveInt('failureRate.minimumCalls', minimumCalls);
  required('failureRate.window', window);
  if (window.kind === 'count') {
    required('failureRate.window.size', window.size);
    check.positiveInt('failureRate.window.size', window.size);
    // More than the window holds could never be reached: the circuit would never trip on rate.
    if (minimumCalls > window.size) {
      throw new ResilienceConfigError('failureRate.minimumCalls', `must be <= failureRate.window.size (${window.size}), got ${minimumCalls}`);
    }
    return new CountWindow(window.size);
  }
  if (window.kind === 'time') {
    const { ms, buckets = 10 } = window;
    required('failureRate.window.ms', ms);
    check.positive('failureRate.window.ms', ms);
    check.positiveInt('failureRate.window.buckets', buckets);
    return new TimeWindow(ms, buckets);
  }
  throw new ResilienceConfigError('failureRate.window.kind', `must be 'count' or 'time', got ${String((window as { kind: unknown }).kind)}`);
}
