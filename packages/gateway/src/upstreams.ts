import type { Instance, Registry } from '@agora/discovery';
import type { Logger, Metrics } from '@agora/observability';
import {
  CircuitBreaker,
  exponentialBackoff,
  isBrokenCircuitError,
  isTaskTimeoutError,
  RetryBudget,
  RetryPolicy,
  systemClock,
  type CircuitBreakerOptions,
  type CircuitSnapshot,
  type Clock,
  type Disposable,
} from '@agora/resilience';
import { breakerMetrics, retryMetrics } from '@agora/resilience/prometheus';

/** How the gateway protects itself and the services from each other. */
export interface UpstreamPolicyOptions {
  /** Per instance. Defaults: 5 failures in a row, or half of 20+ calls in 10 s; open 5 s. */
  readonly breaker?: Partial<Omit<CircuitBreakerOptions, 'clock' | 'name' | 'isResultFailure' | 'isFailure'>>;
  /** Tries of an idempotent request (default 2: one retry, on another instance when there is one). */
  readonly maxAttempts?: number;
  /** Retries allowed per call, per service, over 10 s (default 0.2), so retries cannot double an outage. */
  readonly retryBudgetRatio?: number;
  readonly clock?: Clock;
  /** Circuit changes are logged here (warn when one opens). */
  readonly logger?: Logger;
}

/** One row of `/admin/circuits`. */
export interface CircuitView extends Omit<CircuitSnapshot, 'name'> {
  readonly service: string;
  readonly instance: string;
  readonly url: string;
}

/** The caller hung up: not a failure of the upstream. */
export class CallerGoneError extends Error {
  readonly retryable = false;
  constructor() {
    super('the caller closed the connection');
    this.name = 'CallerGoneError';
  }
}

/**
 * A failure on the last instance not yet tried for this request: nowhere else to retry, so
 * it is not retried (on one instance, a retry would only wait and hit the same failure).
 */
export class NoOtherInstanceError extends Error {
  readonly retryable = false;
  constructor(readonly failure: unknown) {
    super('every instance was tried', { cause: failure });
    this.name = 'NoOtherInstanceError';
  }
}

/**
 * A fast failure of the transport (refused, reset, circuit open): worth another instance.
 * A timeout is not retried: the whole request would take twice the timeout, and a slow
 * service would get twice the load.
 */
export function isTransportFailure(err: unknown): boolean {
  if (isBrokenCircuitError(err)) return true;
  if (isTaskTimeoutError(err)) return false;
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && (code.startsWith('UND_ERR_') || ['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH'].includes(code));
}

/**
 * A circuit breaker per upstream instance (cheap: no timers), made on first use and dropped
 * when the instance leaves the registry; and per service a retry policy with a shared retry
 * budget. Instances whose circuit is open are skipped while another one can take the call.
 */
export class Upstreams {
  readonly #breakers = new Map<string, { breaker: CircuitBreaker; instance: Instance; metrics: Disposable }>();
  readonly #retries = new Map<string, RetryPolicy>();
  readonly #turns = new Map<string, number>();
  readonly #clock: Clock;
  readonly #unwatch: () => void;

  constructor(
    private readonly registry: Registry,
    private readonly metrics: Metrics,
    private readonly options: UpstreamPolicyOptions = {},
  ) {
    this.#clock = options.clock ?? systemClock;
    this.#unwatch = registry.watch((change) => {
      if (change.type === 'down') this.#forget(change.instance.id);
    });
  }

  breakerFor(instance: Instance): CircuitBreaker {
    const known = this.#breakers.get(instance.id);
    if (known !== undefined && known.instance.url === instance.url) return known.breaker;
    if (known !== undefined) this.#forget(instance.id);
    const breaker = new CircuitBreaker({
      consecutiveFailures: 5,
      failureRate: { threshold: 0.5, minimumCalls: 20, window: { kind: 'time', ms: 10_000 } },
      openMs: 5000,
      ...this.options.breaker,
      name: instance.id,
      clock: this.#clock,
      // The caller hanging up says nothing about the upstream.
      isFailure: (err) => !(err instanceof CallerGoneError),
      // A 5xx is returned to the caller as it is, and counts against the instance.
      isResultFailure: (result) => ((result as { statusCode?: number }).statusCode ?? 0) >= 500,
    });
    const stopMetrics = breakerMetrics(this.metrics, breaker, { service: instance.service, instance: instance.id });
    const stopLogging = breaker.onStateChange(({ from, to, reason }) => {
      const fields = { service: instance.service, instance: instance.id, url: instance.url, from, to, reason };
      if (to === 'open') this.options.logger?.warn(fields, 'circuit opened: calls to this instance are refused');
      else this.options.logger?.info(fields, 'circuit changed');
    });
    const metrics = { dispose: () => (stopMetrics.dispose(), stopLogging.dispose()) };
    this.#breakers.set(instance.id, { breaker, instance, metrics });
    return breaker;
  }

  /**
   * The next instance to try, round-robin, passing over those already tried in this request
   * and those whose circuit refuses calls, unless nothing else is left (then its breaker
   * answers with a fast `circuit_open`).
   */
  pick(instances: readonly Instance[], tried: ReadonlySet<string>): Instance {
    const service = instances[0]!.service;
    const turn = this.#turns.get(service) ?? 0;
    this.#turns.set(service, turn + 1);
    const ordered = instances.map((_, i) => instances[(turn + i) % instances.length]!);
    const open = (i: Instance) => {
      const state = this.#breakers.get(i.id)?.breaker.state;
      return state === 'open' || state === 'isolated';
    };
    return (
      ordered.find((i) => !tried.has(i.id) && !open(i)) ?? ordered.find((i) => !open(i)) ?? ordered.find((i) => !tried.has(i.id)) ?? ordered[0]!
    );
  }

  retryFor(service: string): RetryPolicy {
    let retry = this.#retries.get(service);
    if (retry === undefined) {
      retry = new RetryPolicy({
        maxAttempts: this.options.maxAttempts ?? 2,
        backoff: exponentialBackoff({ initialMs: 10, maxMs: 200, jitter: 'full' }),
        shouldRetry: isTransportFailure,
        budget: new RetryBudget({ ratio: this.options.retryBudgetRatio ?? 0.2, clock: this.#clock }),
        clock: this.#clock,
      });
      retryMetrics(this.metrics, retry, { service });
      this.#retries.set(service, retry);
    }
    return retry;
  }

  /** Every registered instance with its circuit, for `/admin/circuits`. */
  async circuits(): Promise<CircuitView[]> {
    const views: CircuitView[] = [];
    for (const service of await this.registry.services()) {
      for (const instance of await this.registry.instances(service)) {
        const { name: _, ...snapshot } = this.breakerFor(instance).snapshot();
        views.push({ service, instance: instance.id, url: instance.url, ...snapshot });
      }
    }
    return views;
  }

  close(): void {
    this.#unwatch();
    for (const id of [...this.#breakers.keys()]) this.#forget(id);
  }

  #forget(instanceId: string): void {
    this.#breakers.get(instanceId)?.metrics.dispose();
    this.#breakers.delete(instanceId);
  }
}
