import { describe, expect, it, vi } from 'vitest';
import { CircuitBreaker } from '../src/breaker.js';
import type { CircuitBreakerOptions, CircuitStateChange } from '../src/breaker.js';
import { BrokenCircuitError, isBrokenCircuitError, isResilienceConfigError } from '../src/errors.js';
import { wrap } from '../src/policy.js';
import { createFakeClock } from '../src/testing.js';
import type { FakeClock } from '../src/testing.js';

const boom = new Error('upstream down');
const fail = (): Promise<never> => Promise.reject(boom);
const ok = (): Promise<string> => Promise.resolve('ok');

function deferred<T>() {
  let resolve!: (value: T) => void;
  let reject!: (reason: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

function setup(options: Omit<CircuitBreakerOptions, 'clock'>) {
  const clock = createFakeClock();
  const breaker = new CircuitBreaker({ ...options, clock });
  const changes: CircuitStateChange[] = [];
  breaker.onStateChange((change) => changes.push(change));
  return { clock, breaker, changes };
}

async function failures(breaker: CircuitBreaker, n: number): Promise<void> {
  for (let i = 0; i < n; i++) await expect(breaker.execute(fail)).rejects.toBe(boom);
}

async function successes(breaker: CircuitBreaker, n: number): Promise<void> {
  for (let i = 0; i < n; i++) await expect(breaker.execute(ok)).resolves.toBe('ok');
}

async function refusal(breaker: CircuitBreaker): Promise<BrokenCircuitError> {
  const fn = vi.fn(ok);
  const err: unknown = await breaker.execute(fn).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(fn).not.toHaveBeenCalled();
  expect(isBrokenCircuitError(err)).toBe(true);
  return err as BrokenCircuitError;
}

/** Trips a consecutive-failures breaker and waits out openMs, so the next call is a trial. */
async function toHalfOpen(breaker: CircuitBreaker, clock: FakeClock, consecutive: number, openMs: number): Promise<void> {
  await failures(breaker, consecutive);
  await clock.advance(openMs);
  expect(breaker.state).toBe('half-open');
}

describe('CircuitBreaker: closed to open', () => {
  it('opens after consecutiveFailures failures in a row, a success in between starting the count again', async () => {
    const { breaker, changes } = setup({ consecutiveFailures: 3, openMs: 1000 });
    await failures(breaker, 2);
    await successes(breaker, 1);
    await failures(breaker, 2);
    expect(breaker.state).toBe('closed');
    expect(breaker.snapshot().failures).toBe(2);
    await failures(breaker, 1);
    expect(breaker.state).toBe('open');
    expect(changes).toEqual([{ from: 'closed', to: 'open', reason: 'consecutive-failures' }]);
  });

  it('opens when the failure rate over a count window reaches the threshold', async () => {
    const { breaker, changes } = setup({ failureRate: { threshold: 0.5, minimumCalls: 4, window: { kind: 'count', size: 4 } }, openMs: 1000 });
    await successes(breaker, 2);
    await failures(breaker, 1);
    expect(breaker.snapshot().window).toEqual({ calls: 3, failures: 1, rate: 1 / 3 });
    await failures(breaker, 1);
    expect(breaker.state).toBe('open');
    expect(breaker.snapshot().window).toEqual({ calls: 4, failures: 2, rate: 0.5 });
    expect(changes).toEqual([{ from: 'closed', to: 'open', reason: 'failure-rate' }]);
  });

  it('forgets outcomes a count window has pushed out', async () => {
    const { breaker } = setup({ failureRate: { threshold: 0.5, minimumCalls: 4, window: { kind: 'count', size: 4 } }, openMs: 1000 });
    await failures(breaker, 1);
    await successes(breaker, 4);
    await failures(breaker, 1);
    // Had the first failure stayed, 2 of 4 would trip it.
    expect(breaker.snapshot().window).toEqual({ calls: 4, failures: 1, rate: 0.25 });
    expect(breaker.state).toBe('closed');
  });

  it('does not open on fewer than minimumCalls calls, however many fail', async () => {
    const { breaker } = setup({ failureRate: { threshold: 0.5, minimumCalls: 5, window: { kind: 'count', size: 10 } }, openMs: 1000 });
    await failures(breaker, 4);
    expect(breaker.state).toBe('closed');
    await failures(breaker, 1);
    expect(breaker.state).toBe('open');
  });

  it('opens on the failure rate over a time window', async () => {
    const { breaker, clock, changes } = setup({ failureRate: { threshold: 0.75, minimumCalls: 4, window: { kind: 'time', ms: 10_000 } }, openMs: 1000 });
    await failures(breaker, 2);
    await clock.advance(5_000);
    await successes(breaker, 1);
    await failures(breaker, 1);
    expect(breaker.state).toBe('open');
    expect(changes).toEqual([{ from: 'closed', to: 'open', reason: 'failure-rate' }]);
  });

  it('drops time-window buckets as the clock passes them, so old failures stop counting', async () => {
    const { breaker, clock } = setup({ failureRate: { threshold: 0.5, minimumCalls: 4, window: { kind: 'time', ms: 10_000, buckets: 10 } }, openMs: 1000 });
    await failures(breaker, 3);
    await clock.advance(9_000);
    expect(breaker.snapshot().window).toEqual({ calls: 3, failures: 3, rate: 1 });
    await clock.advance(1_000);
    expect(breaker.snapshot().window).toEqual({ calls: 0, failures: 0, rate: 0 });
    await successes(breaker, 3);
    await failures(breaker, 1);
    // With the three old failures still counted this would be 4 of 7 and open.
    expect(breaker.snapshot().window).toEqual({ calls: 4, failures: 1, rate: 0.25 });
    expect(breaker.state).toBe('closed');
  });

  it('opens on whichever of consecutiveFailures and failureRate is reached first', async () => {
    const { breaker, changes } = setup({
      consecutiveFailures: 3,
      failureRate: { threshold: 0.5, minimumCalls: 4, window: { kind: 'count', size: 10 } },
      openMs: 1000,
    });
    await failures(breaker, 3);
    expect(changes.at(-1)).toEqual({ from: 'closed', to: 'open', reason: 'consecutive-failures' });
    breaker.reset();
    await failures(breaker, 1);
    await successes(breaker, 1);
    await failures(breaker, 1);
    await successes(breaker, 1);
    expect(breaker.state).toBe('closed');
    await failures(breaker, 1);
    expect(changes.at(-1)).toEqual({ from: 'closed', to: 'open', reason: 'failure-rate' });
  });

  it('never opens on successes alone', async () => {
    const { breaker, clock, changes } = setup({ consecutiveFailures: 1, failureRate: { threshold: 0.1, minimumCalls: 1, window: { kind: 'time', ms: 1000 } }, openMs: 1000 });
    for (let i = 0; i < 20; i++) {
      await successes(breaker, 5);
      await clock.advance(300);
    }
    expect(breaker.state).toBe('closed');
    expect(changes).toEqual([]);
  });
});

describe('CircuitBreaker: open', () => {
  it('refuses calls without making them, with code circuit_open and retryAt = openedAt + openMs', async () => {
    const { breaker, clock } = setup({ consecutiveFailures: 1, openMs: 5000 });
    const rejects: unknown[] = [];
    breaker.onReject((r) => rejects.push(r));
    const openedAt = clock.now();
    await failures(breaker, 1);
    await clock.advance(4999);
    const err = await refusal(breaker);
    expect(err.code).toBe('circuit_open');
    expect(err.retryAt).toBe(openedAt + 5000);
    expect(err.isolated).toBe(false);
    expect(rejects).toEqual([{ retryAt: openedAt + 5000, isolated: false }]);
    expect(breaker.state).toBe('open');
    expect(breaker.snapshot()).toEqual({ name: undefined, state: 'open', failures: 1, openedAt, retryAt: openedAt + 5000 });
  });

  it('reports half-open once openMs has passed, and takes the step with the next call', async () => {
    const { breaker, clock, changes } = setup({ consecutiveFailures: 1, openMs: 5000 });
    await failures(breaker, 1);
    await clock.advance(5000);
    expect(breaker.state).toBe('half-open');
    expect(breaker.snapshot()).toMatchObject({ state: 'half-open' });
    expect(breaker.snapshot().retryAt).toBeUndefined();
    // No timer: the change is recorded when a call comes.
    expect(changes).toHaveLength(1);
    const fn = vi.fn(ok);
    await breaker.execute(fn);
    expect(fn).toHaveBeenCalledOnce();
    expect(changes.slice(1)).toEqual([
      { from: 'open', to: 'half-open', reason: 'open-elapsed' },
      { from: 'half-open', to: 'closed', reason: 'trial-successes' },
    ]);
  });
});

describe('CircuitBreaker: half-open', () => {
  it('admits exactly halfOpenMaxCalls trials at once and refuses the rest with retryAt = now', async () => {
    const { breaker, clock } = setup({ consecutiveFailures: 1, openMs: 1000, halfOpenMaxCalls: 2, halfOpenSuccesses: 2 });
    await toHalfOpen(breaker, clock, 1, 1000);
    const trials = [deferred<string>(), deferred<string>()];
    const running = trials.map((t) => breaker.execute(() => t.promise));
    const err = await refusal(breaker);
    expect(err.retryAt).toBe(clock.now());
    expect(err.isolated).toBe(false);
    trials[0]?.resolve('a');
    await expect(running[0]).resolves.toBe('a');
    expect(breaker.state).toBe('half-open');
    // The finished trial gave back its slot.
    const third = deferred<string>();
    const running3 = breaker.execute(() => third.promise);
    await refusal(breaker);
    trials[1]?.resolve('b');
    third.resolve('c');
    await expect(Promise.all([running[1], running3])).resolves.toEqual(['b', 'c']);
    expect(breaker.state).toBe('closed');
  });

  it('closes only after halfOpenSuccesses trial successes, with the windows cleared', async () => {
    const { breaker, clock, changes } = setup({
      consecutiveFailures: 2,
      failureRate: { threshold: 1, minimumCalls: 5, window: { kind: 'count', size: 10 } },
      openMs: 1000,
      halfOpenSuccesses: 3,
    });
    await toHalfOpen(breaker, clock, 2, 1000);
    await successes(breaker, 2);
    expect(breaker.state).toBe('half-open');
    await successes(breaker, 1);
    expect(breaker.state).toBe('closed');
    expect(changes.at(-1)).toEqual({ from: 'half-open', to: 'closed', reason: 'trial-successes' });
    expect(breaker.snapshot()).toEqual({ name: undefined, state: 'closed', failures: 0, window: { calls: 0, failures: 0, rate: 0 } });
  });

  it('opens again on a trial failure, for a fresh openMs', async () => {
    const { breaker, clock, changes } = setup({ consecutiveFailures: 1, openMs: 1000, halfOpenSuccesses: 2 });
    await toHalfOpen(breaker, clock, 1, 1000);
    await successes(breaker, 1);
    await clock.advance(250);
    const reopenedAt = clock.now();
    await failures(breaker, 1);
    expect(changes.at(-1)).toEqual({ from: 'half-open', to: 'open', reason: 'trial-failure' });
    expect((await refusal(breaker)).retryAt).toBe(reopenedAt + 1000);
    await clock.advance(999);
    await refusal(breaker);
    await clock.advance(1);
    // The success before the failure does not carry over into the new half-open period.
    await successes(breaker, 1);
    expect(breaker.state).toBe('half-open');
    await successes(breaker, 1);
    expect(breaker.state).toBe('closed');
  });

  it('ignores calls from before the trip that finish while half-open', async () => {
    const { breaker, clock } = setup({ consecutiveFailures: 1, openMs: 1000 });
    const slowSuccess = deferred<string>();
    const slowFailure = deferred<string>();
    const a = breaker.execute(() => slowSuccess.promise);
    const b = breaker.execute(() => slowFailure.promise);
    await toHalfOpen(breaker, clock, 1, 1000);
    const trial = deferred<string>();
    const running = breaker.execute(() => trial.promise);
    slowSuccess.resolve('late');
    slowFailure.reject(boom);
    await expect(a).resolves.toBe('late');
    await expect(b).rejects.toBe(boom);
    // Neither closed nor reopened the circuit, nor freed the trial's slot.
    expect(breaker.state).toBe('half-open');
    await refusal(breaker);
    trial.resolve('ok');
    await running;
    expect(breaker.state).toBe('closed');
  });
});

describe('CircuitBreaker: isolate and reset', () => {
  it('isolate holds the circuit open with retryAt +Infinity until the handle is disposed', async () => {
    const { breaker, changes } = setup({ consecutiveFailures: 1, openMs: 1000 });
    const isolation = breaker.isolate();
    expect(breaker.state).toBe('isolated');
    const err = await refusal(breaker);
    expect(err.isolated).toBe(true);
    expect(err.retryAt).toBe(Number.POSITIVE_INFINITY);
    expect(breaker.snapshot()).toEqual({ name: undefined, state: 'isolated', failures: 0 });
    isolation.dispose();
    isolation.dispose();
    expect(breaker.state).toBe('closed');
    await successes(breaker, 1);
    expect(changes).toEqual([
      { from: 'closed', to: 'isolated', reason: 'isolated' },
      { from: 'isolated', to: 'closed', reason: 'isolation-released' },
    ]);
  });

  it('stays isolated until every isolation is disposed, whatever openMs says', async () => {
    const { breaker, clock } = setup({ consecutiveFailures: 1, openMs: 1000 });
    await failures(breaker, 1);
    const first = breaker.isolate();
    const second = breaker.isolate();
    await clock.advance(10_000);
    expect(breaker.state).toBe('isolated');
    first.dispose();
    await refusal(breaker);
    second.dispose();
    expect(breaker.state).toBe('closed');
  });

  it('reset releases every isolation, and handles from before it release nothing later', async () => {
    const { breaker, changes } = setup({ consecutiveFailures: 1, openMs: 1000 });
    const before = breaker.isolate();
    breaker.reset();
    expect(breaker.state).toBe('closed');
    breaker.isolate();
    before.dispose();
    expect(breaker.state).toBe('isolated');
    expect(changes.map((c) => c.reason)).toEqual(['isolated', 'reset', 'isolated']);
  });

  it('reset closes an open circuit and clears its counts; calls in flight then count for nothing', async () => {
    const { breaker, changes } = setup({ consecutiveFailures: 2, failureRate: { threshold: 1, minimumCalls: 3, window: { kind: 'count', size: 3 } }, openMs: 1000 });
    const inFlight = deferred<string>();
    const running = breaker.execute(() => inFlight.promise);
    await failures(breaker, 2);
    breaker.reset();
    expect(changes.at(-1)).toEqual({ from: 'open', to: 'closed', reason: 'reset' });
    expect(breaker.snapshot()).toMatchObject({ state: 'closed', failures: 0, window: { calls: 0, failures: 0, rate: 0 } });
    await failures(breaker, 1);
    inFlight.reject(boom);
    await expect(running).rejects.toBe(boom);
    expect(breaker.snapshot()).toMatchObject({ state: 'closed', failures: 1 });
  });
});

describe('CircuitBreaker: which outcomes count', () => {
  it('isFailure: other errors are rethrown and count as nothing', async () => {
    const notFound = Object.assign(new Error('not found'), { status: 404 });
    const { breaker, clock } = setup({ consecutiveFailures: 2, openMs: 1000, isFailure: (err) => (err as { status?: number }).status !== 404 });
    await failures(breaker, 1);
    await expect(breaker.execute(() => Promise.reject(notFound))).rejects.toBe(notFound);
    // Ignored, not a success: the failure before it still counts.
    expect(breaker.snapshot().failures).toBe(1);
    for (let i = 0; i < 5; i++) await expect(breaker.execute(() => Promise.reject(notFound))).rejects.toBe(notFound);
    expect(breaker.state).toBe('closed');
    await failures(breaker, 1);
    expect(breaker.state).toBe('open');
    await clock.advance(1000);
    // In half-open an ignored error gives back the trial slot and decides nothing.
    await expect(breaker.execute(() => Promise.reject(notFound))).rejects.toBe(notFound);
    expect(breaker.state).toBe('half-open');
    await successes(breaker, 1);
    expect(breaker.state).toBe('closed');
  });

  it('isResultFailure: a result can count as a failure and still reach the caller', async () => {
    const { breaker } = setup({ consecutiveFailures: 2, openMs: 1000, isResultFailure: (r) => (r as { status: number }).status >= 500 });
    const seen: unknown[] = [];
    breaker.onFailure((f) => seen.push(f));
    await expect(breaker.execute(() => ({ status: 503 }))).resolves.toEqual({ status: 503 });
    await expect(breaker.execute(() => ({ status: 200 }))).resolves.toEqual({ status: 200 });
    await expect(breaker.execute(() => ({ status: 503 }))).resolves.toEqual({ status: 503 });
    expect(breaker.state).toBe('closed');
    await expect(breaker.execute(() => ({ status: 502 }))).resolves.toEqual({ status: 502 });
    expect(breaker.state).toBe('open');
    expect(seen).toEqual([
      { kind: 'result', result: { status: 503 }, durationMs: 0 },
      { kind: 'result', result: { status: 503 }, durationMs: 0 },
      { kind: 'result', result: { status: 502 }, durationMs: 0 },
    ]);
  });

  it('a call failing after the caller aborted is not a failure of the upstream', async () => {
    const { breaker } = setup({ consecutiveFailures: 1, openMs: 1000 });
    const controller = new AbortController();
    const call = breaker.execute(
      ({ signal }) =>
        new Promise((_, reject) => {
          signal.addEventListener('abort', () => reject(signal.reason));
        }),
      { signal: controller.signal },
    );
    controller.abort(new Error('client went away'));
    await expect(call).rejects.toThrow('client went away');
    expect(breaker.state).toBe('closed');
    expect(breaker.snapshot().failures).toBe(0);
    // The same error with the caller still waiting (a timeout inside the breaker, say) counts.
    await expect(breaker.execute(() => Promise.reject(new Error('timed out')))).rejects.toThrow('timed out');
    expect(breaker.state).toBe('open');
  });

  it('an aborted trial gives back its slot without deciding anything', async () => {
    const { breaker, clock } = setup({ consecutiveFailures: 1, openMs: 1000 });
    await toHalfOpen(breaker, clock, 1, 1000);
    const controller = new AbortController();
    const trial = deferred<string>();
    const call = breaker.execute(() => trial.promise, { signal: controller.signal });
    await refusal(breaker);
    controller.abort();
    trial.reject(controller.signal.reason);
    await expect(call).rejects.toBe(controller.signal.reason);
    expect(breaker.state).toBe('half-open');
    await successes(breaker, 1);
    expect(breaker.state).toBe('closed');
  });

  it('a filter that throws surfaces its error and does not keep the trial slot', async () => {
    const bug = new Error('bug in isFailure');
    const { breaker, clock } = setup({
      consecutiveFailures: 1,
      openMs: 1000,
      isFailure: (err) => {
        if (err === boom) throw bug;
        return true;
      },
    });
    await expect(breaker.execute(() => Promise.reject(new Error('x')))).rejects.toThrow('x');
    await clock.advance(1000);
    await expect(breaker.execute(fail)).rejects.toBe(bug);
    expect(breaker.state).toBe('half-open');
    await successes(breaker, 1);
    expect(breaker.state).toBe('closed');
  });
});

describe('CircuitBreaker: events', () => {
  it('fires every state change in order, each from the previous to', async () => {
    const { breaker, clock, changes } = setup({ consecutiveFailures: 1, openMs: 1000 });
    await failures(breaker, 1);
    await clock.advance(1000);
    await failures(breaker, 1);
    await clock.advance(1000);
    await successes(breaker, 1);
    breaker.isolate().dispose();
    expect(changes).toEqual([
      { from: 'closed', to: 'open', reason: 'consecutive-failures' },
      { from: 'open', to: 'half-open', reason: 'open-elapsed' },
      { from: 'half-open', to: 'open', reason: 'trial-failure' },
      { from: 'open', to: 'half-open', reason: 'open-elapsed' },
      { from: 'half-open', to: 'closed', reason: 'trial-successes' },
      { from: 'closed', to: 'isolated', reason: 'isolated' },
      { from: 'isolated', to: 'closed', reason: 'isolation-released' },
    ]);
  });

  it('reports outcomes with durations on the clock, the failure before the change it causes', async () => {
    const { breaker, clock } = setup({ consecutiveFailures: 1, openMs: 1000 });
    const log: string[] = [];
    breaker.onSuccess(({ durationMs }) => log.push(`success ${durationMs}`));
    breaker.onFailure((f) => log.push(`failure ${f.kind} ${f.durationMs} ${f.kind === 'error' && f.error === boom}`));
    breaker.onStateChange(({ to }) => log.push(`state ${to}`));
    breaker.onReject(({ retryAt }) => log.push(`reject ${retryAt - clock.now()}`));
    const slow = deferred<string>();
    const call = breaker.execute(() => slow.promise);
    await clock.advance(25);
    slow.resolve('ok');
    await call;
    const failing = deferred<string>();
    const failed = breaker.execute(() => failing.promise);
    await clock.advance(40);
    failing.reject(boom);
    await expect(failed).rejects.toBe(boom);
    await refusal(breaker);
    expect(log).toEqual(['success 25', 'failure error 40 true', 'state open', 'reject 1000']);
  });

  it('times only calls that started while someone listened', async () => {
    const { breaker, clock } = setup({ consecutiveFailures: 1, openMs: 1000 });
    const slow = deferred<string>();
    const call = breaker.execute(() => slow.promise);
    const durations: number[] = [];
    breaker.onSuccess(({ durationMs }) => durations.push(durationMs));
    await clock.advance(10);
    slow.resolve('ok');
    await call;
    await successes(breaker, 1);
    expect(durations).toEqual([0]);
  });

  it('a listener that throws changes nothing, and disposed listeners hear nothing', async () => {
    const { breaker, changes } = setup({ consecutiveFailures: 1, openMs: 1000 });
    breaker.onStateChange(() => {
      throw new Error('faulty listener');
    });
    const heard = vi.fn();
    breaker.onFailure(heard).dispose();
    await failures(breaker, 1);
    expect(breaker.state).toBe('open');
    expect(changes).toHaveLength(1);
    expect(heard).not.toHaveBeenCalled();
  });
});

describe('CircuitBreaker: execute', () => {
  it('passes the caller signal and attempt on, or a live signal of its own', async () => {
    const { breaker } = setup({ consecutiveFailures: 1, openMs: 1000 });
    const controller = new AbortController();
    await breaker.execute(
      ({ signal, attempt }) => {
        expect(signal).toBe(controller.signal);
        expect(attempt).toBe(3);
      },
      { signal: controller.signal, attempt: 3 },
    );
    await breaker.execute(({ signal, attempt }) => {
      expect(signal).toBeInstanceOf(AbortSignal);
      expect(signal.aborted).toBe(false);
      expect(attempt).toBe(1);
    });
  });

  it('takes a synchronous throw as a failure and composes with wrap', async () => {
    const { breaker } = setup({ consecutiveFailures: 1, openMs: 1000, name: 'billing' });
    const policy = wrap(breaker);
    await expect(
      policy.execute(() => {
        throw boom;
      }),
    ).rejects.toBe(boom);
    await expect(policy.execute(ok)).rejects.toBeInstanceOf(BrokenCircuitError);
    expect(breaker.snapshot()).toMatchObject({ name: 'billing', state: 'open' });
  });
});

describe('CircuitBreaker: options', () => {
  const base = { openMs: 1000, consecutiveFailures: 1 };
  const rate = (over: object) => ({ openMs: 1000, failureRate: { threshold: 0.5, minimumCalls: 2, window: { kind: 'count', size: 10 }, ...over } });
  const cases: [string, object][] = [
    ['consecutiveFailures|failureRate', { openMs: 1000 }],
    ['consecutiveFailures', { ...base, consecutiveFailures: 0 }],
    ['consecutiveFailures', { ...base, consecutiveFailures: 1.5 }],
    ['openMs', { consecutiveFailures: 1 }],
    ['openMs', { ...base, openMs: 0 }],
    ['openMs', { ...base, openMs: Number.POSITIVE_INFINITY }],
    ['halfOpenMaxCalls', { ...base, halfOpenMaxCalls: 0 }],
    ['halfOpenSuccesses', { ...base, halfOpenSuccesses: -1 }],
    ['isFailure', { ...base, isFailure: true }],
    ['isResultFailure', { ...base, isResultFailure: 'status >= 500' }],
    ['clock', { ...base, clock: {} }],
    ['failureRate.threshold', rate({ threshold: 0 })],
    ['failureRate.threshold', rate({ threshold: 1.2 })],
    ['failureRate.threshold', rate({ threshold: undefined })],
    ['failureRate.minimumCalls', rate({ minimumCalls: 0 })],
    ['failureRate.minimumCalls', rate({ minimumCalls: 11 })],
    ['failureRate.window', rate({ window: undefined })],
    ['failureRate.window.kind', rate({ window: { kind: 'sliding', size: 10 } })],
    ['failureRate.window.size', rate({ window: { kind: 'count', size: 0 } })],
    ['failureRate.window.ms', rate({ window: { kind: 'time', ms: -5 } })],
    ['failureRate.window.ms', rate({ window: { kind: 'time' } })],
    ['failureRate.window.buckets', rate({ window: { kind: 'time', ms: 1000, buckets: 2.5 } })],
  ];

  it.each(cases)('rejects a bad %s with invalid_option naming it', (option, options) => {
    let caught: unknown;
    try {
      new CircuitBreaker(options as CircuitBreakerOptions);
    } catch (err) {
      caught = err;
    }
    expect(isResilienceConfigError(caught)).toBe(true);
    expect(caught).toMatchObject({ code: 'invalid_option', option });
  });

  it('names the option and the value in the message', () => {
    expect(() => new CircuitBreaker({ openMs: 1000, consecutiveFailures: 0 })).toThrow('consecutiveFailures: must be an integer >= 1, got 0');
  });

  it('accepts halfOpenSuccesses above halfOpenMaxCalls: trials then run in turns', async () => {
    const { breaker, clock } = setup({ consecutiveFailures: 1, openMs: 1000, halfOpenMaxCalls: 1, halfOpenSuccesses: 2 });
    await toHalfOpen(breaker, clock, 1, 1000);
    await successes(breaker, 1);
    expect(breaker.state).toBe('half-open');
    await successes(breaker, 1);
    expect(breaker.state).toBe('closed');
  });
});
