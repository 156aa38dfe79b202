import { createMetrics, type Metrics } from '@agora/observability';
import { describe, expect, it } from 'vitest';
import { constantBackoff } from '../src/backoff.js';
import { CircuitBreaker } from '../src/breaker.js';
import { RetryBudget } from '../src/budget.js';
import { BulkheadPolicy } from '../src/bulkhead.js';
import { ResilienceErrorCodes } from '../src/errors.js';
import { breakerMetrics, bulkheadMetrics, instrumentRateLimiter, retryMetrics, timeoutMetrics } from '../src/prometheus.js';
import { tokenBucketLimiter } from '../src/rate-limit/limiters.js';
import { createMemoryRateLimitStore } from '../src/rate-limit/memory-store.js';
import type { RateLimiter, RateLimitResult } from '../src/rate-limit/types.js';
import { RetryPolicy } from '../src/retry.js';
import { createFakeClock } from '../src/testing.js';
import { TimeoutPolicy } from '../src/timeout.js';

/**
 * One sample of the text exposition, found by metric name and its exact label set, or
 * `undefined` when there is no such series.
 */
function sample(text: string, name: string, labels: Readonly<Record<string, string>> = {}): number | undefined {
  const wanted = Object.entries(labels).sort(([a], [b]) => a.localeCompare(b));
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (m === null || m[1] !== name) continue;
    const got = [...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1], l[2]]).sort(([a], [b]) => a!.localeCompare(b!));
    if (JSON.stringify(got) === JSON.stringify(wanted)) return Number(m[3]);
  }
  return undefined;
}

/** Reads one sample at scrape time, so gauges with a `collect` are read as Prometheus would. */
async function scrape(metrics: Metrics, name: string, labels?: Readonly<Record<string, string>>): Promise<number | undefined> {
  return sample(await metrics.render(), name, labels);
}

const boom = new Error('upstream down');
const fail = (): Promise<never> => Promise.reject(boom);
const ok = (): Promise<string> => Promise.resolve('ok');
/** The error a promise rejects with, or undefined when it resolves. */
const settled = (p: Promise<unknown>): Promise<unknown> => p.then(() => undefined, (e: unknown) => e);

describe('sample (the exposition reader the tests rely on)', () => {
  it('matches the whole label set, in any order, and nothing else', () => {
    const text = ['# HELP x_total X.', '# TYPE x_total counter', 'x_total{a="1",b="2"} 3', 'x_total{a="1"} 4', 'x 5'].join('\n');
    expect(sample(text, 'x_total', { b: '2', a: '1' })).toBe(3);
    expect(sample(text, 'x_total', { a: '1' })).toBe(4);
    expect(sample(text, 'x')).toBe(5);
    expect(sample(text, 'x_total', { a: '2' })).toBeUndefined();
    expect(sample(text, 'x_total')).toBeUndefined();
  });
});

describe('breakerMetrics', () => {
  const social1 = { service: 'social', instance: 'social-1' };

  function setup() {
    const metrics = createMetrics({ collectDefaults: false });
    const clock = createFakeClock();
    const breaker = new CircuitBreaker({ consecutiveFailures: 2, openMs: 1_000, clock });
    const stop = breakerMetrics(metrics, breaker, social1);
    return { metrics, clock, breaker, stop };
  }

  it('exports the state 0 closed, 2 once tripped, and 1 once openMs has passed, read at scrape time', async () => {
    const { metrics, clock, breaker } = setup();
    expect(await scrape(metrics, 'circuit_breaker_state', social1)).toBe(0);

    await settled(breaker.execute(fail));
    expect(await scrape(metrics, 'circuit_breaker_state', social1)).toBe(0);
    await settled(breaker.execute(fail));
    expect(await scrape(metrics, 'circuit_breaker_state', social1)).toBe(2);

    await clock.advance(999);
    expect(await scrape(metrics, 'circuit_breaker_state', social1)).toBe(2);
    // No call has come, so no transition has happened: the gauge still says half-open.
    await clock.advance(1);
    expect(await scrape(metrics, 'circuit_breaker_state', social1)).toBe(1);
    expect(await scrape(metrics, 'circuit_breaker_transitions_total', { ...social1, to: 'half-open' })).toBeUndefined();

    await breaker.execute(ok);
    expect(await scrape(metrics, 'circuit_breaker_state', social1)).toBe(0);
  });

  it('exports an isolated circuit as 3', async () => {
    const { metrics, breaker } = setup();
    const maintenance = breaker.isolate();
    expect(await scrape(metrics, 'circuit_breaker_state', social1)).toBe(3);
    maintenance.dispose();
    expect(await scrape(metrics, 'circuit_breaker_state', social1)).toBe(0);
  });

  it('counts calls by outcome success, failure and rejected', async () => {
    const { metrics, breaker } = setup();
    await breaker.execute(ok);
    await breaker.execute(ok);
    await settled(breaker.execute(fail));
    await settled(breaker.execute(fail));
    const refused = await settled(breaker.execute(ok));
    expect((refused as { code?: unknown }).code).toBe(ResilienceErrorCodes.CIRCUIT_OPEN);
    await settled(breaker.execute(ok));

    const text = await metrics.render();
    expect(sample(text, 'circuit_breaker_calls_total', { ...social1, outcome: 'success' })).toBe(2);
    expect(sample(text, 'circuit_breaker_calls_total', { ...social1, outcome: 'failure' })).toBe(2);
    expect(sample(text, 'circuit_breaker_calls_total', { ...social1, outcome: 'rejected' })).toBe(2);
  });

  it('counts transitions by the state entered, half-open once a trial call takes it', async () => {
    const { metrics, clock, breaker } = setup();
    await settled(breaker.execute(fail));
    await settled(breaker.execute(fail));
    await clock.advance(1_000);
    await settled(breaker.execute(fail)); // the trial fails: open again
    await clock.advance(1_000);
    await breaker.execute(ok); // this trial closes it

    const text = await metrics.render();
    expect(sample(text, 'circuit_breaker_transitions_total', { ...social1, to: 'open' })).toBe(2);
    expect(sample(text, 'circuit_breaker_transitions_total', { ...social1, to: 'half-open' })).toBe(2);
    expect(sample(text, 'circuit_breaker_transitions_total', { ...social1, to: 'closed' })).toBe(1);
    expect(sample(text, 'circuit_breaker_calls_total', { ...social1, outcome: 'failure' })).toBe(3);
  });

  it('dispose() removes every series of that breaker and stops counting it', async () => {
    const { metrics, breaker, stop } = setup();
    await breaker.execute(ok);
    stop.dispose();

    await breaker.execute(ok);
    await settled(breaker.execute(fail));
    await settled(breaker.execute(fail));
    const text = await metrics.render();
    expect(sample(text, 'circuit_breaker_state', social1)).toBeUndefined();
    expect(sample(text, 'circuit_breaker_calls_total', { ...social1, outcome: 'success' })).toBeUndefined();
    expect(sample(text, 'circuit_breaker_calls_total', { ...social1, outcome: 'failure' })).toBeUndefined();
    expect(sample(text, 'circuit_breaker_transitions_total', { ...social1, to: 'open' })).toBeUndefined();
  });

  it('keeps the series of two breakers on one registry apart, and disposing one leaves the other', async () => {
    const metrics = createMetrics({ collectDefaults: false });
    const clock = createFakeClock();
    const one = new CircuitBreaker({ consecutiveFailures: 1, openMs: 1_000, clock });
    const two = new CircuitBreaker({ consecutiveFailures: 1, openMs: 1_000, clock });
    const social2 = { service: 'social', instance: 'social-2' };
    const stopOne = breakerMetrics(metrics, one, social1);
    breakerMetrics(metrics, two, social2);

    await settled(one.execute(fail));
    await two.execute(ok);
    let text = await metrics.render();
    expect(sample(text, 'circuit_breaker_state', social1)).toBe(2);
    expect(sample(text, 'circuit_breaker_state', social2)).toBe(0);
    expect(sample(text, 'circuit_breaker_calls_total', { ...social1, outcome: 'failure' })).toBe(1);
    expect(sample(text, 'circuit_breaker_calls_total', { ...social1, outcome: 'success' })).toBeUndefined();
    expect(sample(text, 'circuit_breaker_calls_total', { ...social2, outcome: 'success' })).toBe(1);
    expect(sample(text, 'circuit_breaker_calls_total', { ...social2, outcome: 'failure' })).toBeUndefined();

    stopOne.dispose();
    text = await metrics.render();
    expect(sample(text, 'circuit_breaker_state', social1)).toBeUndefined();
    expect(sample(text, 'circuit_breaker_state', social2)).toBe(0);
  });

  it('exports only the declared labels when given an object with more keys, and the scrape still works', async () => {
    const { metrics } = setup();
    const clock = createFakeClock();
    const breaker = new CircuitBreaker({ consecutiveFailures: 1, openMs: 1_000, clock });
    const instance = { service: 'social', instance: 'social-2', url: 'http://127.0.0.1:4001' };
    breakerMetrics(metrics, breaker, instance);
    await settled(breaker.execute(fail));

    const text = await metrics.render();
    expect(sample(text, 'circuit_breaker_state', { service: 'social', instance: 'social-2' })).toBe(2);
    expect(sample(text, 'circuit_breaker_calls_total', { service: 'social', instance: 'social-2', outcome: 'failure' })).toBe(1);
  });

  it('a handle disposed after the breaker was registered again leaves the newer registration', async () => {
    const metrics = createMetrics({ collectDefaults: false });
    const breaker = new CircuitBreaker({ consecutiveFailures: 1, openMs: 1_000, clock: createFakeClock() });
    const old = breakerMetrics(metrics, breaker, { service: 'social', instance: 'old' });
    const current = breakerMetrics(metrics, breaker, social1);
    old.dispose();
    expect(await scrape(metrics, 'circuit_breaker_state', social1)).toBe(0);
    current.dispose();
    expect(await scrape(metrics, 'circuit_breaker_state', social1)).toBeUndefined();
  });

  it('keeps registries apart: a breaker on one is not exported by another', async () => {
    const { metrics } = setup();
    const other = createMetrics({ collectDefaults: false });
    const breaker = new CircuitBreaker({ consecutiveFailures: 1, openMs: 1_000 });
    breakerMetrics(other, breaker, { service: 'identity', instance: 'identity-1' });
    expect(await scrape(metrics, 'circuit_breaker_state', { service: 'identity', instance: 'identity-1' })).toBeUndefined();
    expect(await scrape(other, 'circuit_breaker_state', social1)).toBeUndefined();
    expect(await scrape(other, 'circuit_breaker_state', { service: 'identity', instance: 'identity-1' })).toBe(0);
  });
});

describe('retryMetrics', () => {
  const feed = { service: 'feed' };
  const notRetryable = Object.assign(new Error('bad input'), { retryable: false });

  it('counts each retry made and each give-up by reason', async () => {
    const metrics = createMetrics({ collectDefaults: false });
    const clock = createFakeClock();
    const retry = new RetryPolicy({ maxAttempts: 3, backoff: constantBackoff(100), clock });
    retryMetrics(metrics, retry, feed);

    // Three tries, two retries, then out of attempts.
    const exhausted = settled(retry.execute(fail));
    await clock.advance(200);
    expect(await exhausted).toBe(boom);
    // Never retried.
    expect(await settled(retry.execute(() => Promise.reject(notRetryable)))).toBe(notRetryable);
    // The caller aborts during the wait.
    const caller = new AbortController();
    const aborted = settled(retry.execute(fail, { signal: caller.signal }));
    await clock.advance(50);
    caller.abort(new Error('caller left'));
    await aborted;
    // Succeeds on the second try: one retry, no give-up.
    let tries = 0;
    const recovered = retry.execute(() => (++tries === 1 ? fail() : ok()));
    await clock.advance(100);
    expect(await recovered).toBe('ok');

    const text = await metrics.render();
    expect(sample(text, 'retry_attempts_total', feed)).toBe(2 + 1 + 1);
    expect(sample(text, 'retry_giveups_total', { ...feed, reason: 'attempts' })).toBe(1);
    expect(sample(text, 'retry_giveups_total', { ...feed, reason: 'not-retryable' })).toBe(1);
    expect(sample(text, 'retry_giveups_total', { ...feed, reason: 'aborted' })).toBe(1);
    expect(sample(text, 'retry_giveups_total', { ...feed, reason: 'budget' })).toBeUndefined();
  });

  it('counts a spent budget as reason budget, and stops counting once disposed', async () => {
    const metrics = createMetrics({ collectDefaults: false });
    const clock = createFakeClock();
    const budget = new RetryBudget({ ratio: 0.1, minPerSecond: 0, clock });
    const retry = new RetryPolicy({ maxAttempts: 3, backoff: constantBackoff(100), budget, clock });
    const stop = retryMetrics(metrics, retry, feed);

    // One call earns 0.1 of a retry: the budget refuses the first.
    expect(await settled(retry.execute(fail))).toBe(boom);
    stop.dispose();
    expect(await settled(retry.execute(fail))).toBe(boom);

    const text = await metrics.render();
    expect(sample(text, 'retry_giveups_total', { ...feed, reason: 'budget' })).toBe(1);
    expect(sample(text, 'retry_attempts_total', feed)).toBeUndefined();
  });

  it('counts with only the service label when given an object with more keys', async () => {
    const metrics = createMetrics({ collectDefaults: false });
    const retry = new RetryPolicy({ maxAttempts: 2, backoff: constantBackoff(0) });
    const service = { service: 'feed', instance: 'feed-1' };
    retryMetrics(metrics, retry, service);
    await settled(retry.execute(fail));
    const text = await metrics.render();
    expect(sample(text, 'retry_attempts_total', feed)).toBe(1);
    expect(sample(text, 'retry_giveups_total', { ...feed, reason: 'attempts' })).toBe(1);
  });
});

describe('bulkheadMetrics', () => {
  it('counts calls refused by a full bulkhead, not those that ran or queued', async () => {
    const metrics = createMetrics({ collectDefaults: false });
    const bulkhead = new BulkheadPolicy({ maxConcurrent: 1, maxQueued: 1 });
    bulkheadMetrics(metrics, bulkhead, { service: 'timeline' });

    let release!: () => void;
    const running = bulkhead.execute(() => new Promise<void>((resolve) => (release = resolve)));
    const queued = bulkhead.execute(ok);
    const refused = [await settled(bulkhead.execute(ok)), await settled(bulkhead.execute(ok))];
    expect(refused.map((e) => (e as { code?: unknown }).code)).toEqual([ResilienceErrorCodes.BULKHEAD_FULL, ResilienceErrorCodes.BULKHEAD_FULL]);
    release();
    await running;
    expect(await queued).toBe('ok');

    expect(await scrape(metrics, 'bulkhead_rejections_total', { service: 'timeline' })).toBe(2);
  });
});

describe('timeoutMetrics', () => {
  it('counts calls cut by an aggressive timeout on fake time, not those that finish in time', async () => {
    const metrics = createMetrics({ collectDefaults: false });
    const clock = createFakeClock();
    const timeout = new TimeoutPolicy({ ms: 100, strategy: 'aggressive', clock });
    timeoutMetrics(metrics, timeout, { service: 'search' });

    expect(await timeout.execute(ok)).toBe('ok');
    // Ignores its signal and never settles: only the aggressive strategy ends the call.
    const hung = settled(timeout.execute(() => new Promise<never>(() => undefined)));
    await clock.advance(99);
    expect(await scrape(metrics, 'timeouts_total', { service: 'search' })).toBeUndefined();
    await clock.advance(1);
    expect(((await hung) as { code?: unknown }).code).toBe(ResilienceErrorCodes.TIMEOUT);

    expect(await scrape(metrics, 'timeouts_total', { service: 'search' })).toBe(1);
  });
});

describe('instrumentRateLimiter', () => {
  it('counts checks as allowed or limited', async () => {
    const metrics = createMetrics({ collectDefaults: false });
    const clock = createFakeClock();
    const limiter = instrumentRateLimiter(metrics, 'per-client', tokenBucketLimiter(createMemoryRateLimitStore({ clock }), { capacity: 2, refillPerSecond: 1 }));

    const allowed = [];
    for (let i = 0; i < 3; i++) allowed.push((await limiter.consume('client-1')).allowed);
    expect(allowed).toEqual([true, true, false]);
    await clock.advance(1_000);
    expect((await limiter.consume('client-1')).allowed).toBe(true);

    const text = await metrics.render();
    expect(sample(text, 'rate_limit_checks_total', { limiter: 'per-client', outcome: 'allowed' })).toBe(3);
    expect(sample(text, 'rate_limit_checks_total', { limiter: 'per-client', outcome: 'limited' })).toBe(1);
  });

  it('passes the key, the cost, the limit and the result through unchanged', async () => {
    const metrics = createMetrics({ collectDefaults: false });
    const refused: RateLimitResult = { allowed: false, limit: 7, remaining: 0, resetAt: 1_000, retryAfterMs: 250 };
    const calls: [string, number | undefined][] = [];
    const inner: RateLimiter = {
      limit: 7,
      consume(key, cost) {
        calls.push([key, cost]);
        return Promise.resolve(refused);
      },
    };
    const limiter = instrumentRateLimiter(metrics, 'login', inner);

    expect(limiter.limit).toBe(7);
    expect(await limiter.consume('ip:203.0.113.7', 3)).toBe(refused);
    expect(await limiter.consume('ip:203.0.113.8')).toBe(refused);
    expect(calls).toEqual([
      ['ip:203.0.113.7', 3],
      ['ip:203.0.113.8', undefined],
    ]);
    expect(await scrape(metrics, 'rate_limit_checks_total', { limiter: 'login', outcome: 'limited' })).toBe(2);
  });

  it('counts nothing for a check that fails, and passes the failure on', async () => {
    const metrics = createMetrics({ collectDefaults: false });
    const limiter = instrumentRateLimiter(metrics, 'per-client', tokenBucketLimiter(createMemoryRateLimitStore(), { capacity: 2, refillPerSecond: 1 }));
    const err = await settled(limiter.consume('client-1', 0));
    expect((err as { code?: unknown; option?: unknown }).code).toBe(ResilienceErrorCodes.INVALID_OPTION);
    expect((err as { option?: unknown }).option).toBe('cost');
    const text = await metrics.render();
    expect(sample(text, 'rate_limit_checks_total', { limiter: 'per-client', outcome: 'allowed' })).toBeUndefined();
    expect(sample(text, 'rate_limit_checks_total', { limiter: 'per-client', outcome: 'limited' })).toBeUndefined();
  });
});
