import { counter, gauge, type Metrics } from '@agora/observability';
import type { CircuitBreaker, CircuitState } from './breaker.js';
import type { BulkheadPolicy } from './bulkhead.js';
import type { Disposable } from './events.js';
import type { RateLimiter, RateLimitResult } from './rate-limit/index.js';
import type { RetryPolicy } from './retry.js';
import type { TimeoutPolicy } from './timeout.js';

// The policies never import a metrics library; this module subscribes to their events and
// records them, for whoever wants Prometheus. Every function returns a Disposable that stops
// the recording (drop a breaker's series when its instance leaves).

const STATE_VALUE: Record<CircuitState, number> = { closed: 0, 'half-open': 1, open: 2, isolated: 3 };
type Labels = Readonly<Record<string, string>>;
const breakers = new WeakMap<Metrics, Map<CircuitBreaker, Labels>>();

function subscriptions(list: readonly Disposable[], after?: () => void): Disposable {
  return {
    dispose() {
      for (const d of list) d.dispose();
      after?.();
    },
  };
}

/**
 * Exports a breaker: `circuit_breaker_state{service,instance}` (0 closed, 1 half-open, 2 open,
 * 3 isolated, read at scrape time) and `circuit_breaker_calls_total{...,outcome}` with
 * outcome success, failure or rejected, and `circuit_breaker_transitions_total{...,to}`.
 * @example
 * const stop = breakerMetrics(metrics, breaker, { service: 'social', instance: 'social-1' });
 * // when the instance leaves: stop.dispose(); (its series go too)
 */
export function breakerMetrics(m: Metrics, breaker: CircuitBreaker, given: { service: string; instance: string }): Disposable {
  // Only the declared label names: prom-client throws on any other key, and a throw in the
  // gauge's collect would fail the whole scrape (in a listener, it would drop counts silently).
  const labels: Labels = { service: given.service, instance: given.instance };
  let tracked = breakers.get(m);
  if (tracked === undefined) {
    const all = new Map<CircuitBreaker, Labels>();
    tracked = all;
    breakers.set(m, all);
    gauge(m, 'circuit_breaker_state', 'Circuit state: 0 closed, 1 half-open, 2 open, 3 isolated.', ['service', 'instance'], (g) => {
      g.reset();
      for (const [b, l] of all) g.set(l, STATE_VALUE[b.state]);
    });
  }
  tracked.set(breaker, labels);
  const calls = counter(m, 'circuit_breaker_calls_total', 'Calls through circuit breakers, by outcome.', ['service', 'instance', 'outcome']);
  const transitions = counter(m, 'circuit_breaker_transitions_total', 'Circuit state changes, by the state entered.', ['service', 'instance', 'to']);
  const all = tracked;
  return subscriptions(
    [
      breaker.onSuccess(() => calls.inc({ ...labels, outcome: 'success' })),
      breaker.onFailure(() => calls.inc({ ...labels, outcome: 'failure' })),
      breaker.onReject(() => calls.inc({ ...labels, outcome: 'rejected' })),
      breaker.onStateChange(({ to }) => transitions.inc({ ...labels, to })),
    ],
    // Only this registration's entry: the breaker may have been registered again since.
    () => {
      if (all.get(breaker) !== labels) return;
      all.delete(breaker);
      // An instance that left must not leave series behind: instances come and go for good.
      for (const outcome of ['success', 'failure', 'rejected']) calls.remove({ ...labels, outcome });
      for (const to of Object.keys(STATE_VALUE)) transitions.remove({ ...labels, to });
    },
  );
}

/**
 * Exports a retry policy: `retry_attempts_total{service}` (each retry made) and
 * `retry_giveups_total{service,reason}` (attempts, budget, not-retryable, aborted).
 */
export function retryMetrics(m: Metrics, retry: RetryPolicy, given: { service: string }): Disposable {
  const labels = { service: given.service };
  const retries = counter(m, 'retry_attempts_total', 'Retries made.', ['service']);
  const giveUps = counter(m, 'retry_giveups_total', 'Calls that failed after retrying, by why retrying stopped.', ['service', 'reason']);
  return subscriptions([retry.onRetry(() => retries.inc(labels)), retry.onGiveUp(({ reason }) => giveUps.inc({ ...labels, reason }))]);
}

/** Exports `bulkhead_rejections_total{service}`. */
export function bulkheadMetrics(m: Metrics, bulkhead: BulkheadPolicy, given: { service: string }): Disposable {
  const labels = { service: given.service };
  const rejections = counter(m, 'bulkhead_rejections_total', 'Calls refused by a full bulkhead.', ['service']);
  return subscriptions([bulkhead.onReject(() => rejections.inc(labels))]);
}

/** Exports `timeouts_total{service}`. */
export function timeoutMetrics(m: Metrics, timeout: TimeoutPolicy, given: { service: string }): Disposable {
  const labels = { service: given.service };
  const timeouts = counter(m, 'timeouts_total', 'Calls cut by a timeout policy.', ['service']);
  return subscriptions([timeout.onTimeout(() => timeouts.inc(labels))]);
}

/**
 * Wraps a rate limiter so that every check counts in `rate_limit_checks_total{limiter,outcome}`
 * (outcome allowed or limited).
 * @example
 * const limiter = instrumentRateLimiter(metrics, 'per-client', tokenBucketLimiter(store, { capacity: 100, refillPerSecond: 10 }));
 */
export function instrumentRateLimiter(m: Metrics, name: string, limiter: RateLimiter): RateLimiter {
  const checks = counter(m, 'rate_limit_checks_total', 'Rate limit checks, by outcome.', ['limiter', 'outcome']);
  return {
    get limit() {
      return limiter.limit;
    },
    async consume(key: string, cost?: number): Promise<RateLimitResult> {
      const result = await limiter.consume(key, cost);
      checks.inc({ limiter: name, outcome: result.allowed ? 'allowed' : 'limited' });
      return result;
    },
  };
}
