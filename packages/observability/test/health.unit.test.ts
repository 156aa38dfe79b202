import { afterEach, describe, expect, it, vi } from 'vitest';
import { runHealthChecks, type HealthCheck, type HealthReport } from '../src/index.js';

const ok = (name: string): HealthCheck => ({ name, check: async () => undefined });
const failing = (name: string, reason: string): HealthCheck => ({
  name,
  check: async () => {
    throw new Error(reason);
  },
});

describe('runHealthChecks', () => {
  it('reports ok when every check answers', async () => {
    const report = await runHealthChecks([ok('db'), ok('identity')]);
    expect(report.status).toBe('ok');
    expect(Object.keys(report.checks).sort()).toEqual(['db', 'identity']);
    expect(report.checks.db).toMatchObject({ status: 'ok' });
    expect(report.checks.db).not.toHaveProperty('error');
  });

  it('reports ok with no checks at all', async () => {
    expect(await runHealthChecks([])).toEqual({ status: 'ok', checks: {} });
  });

  it('reports fail, naming the failing check and its error, and still reports the others', async () => {
    const report = await runHealthChecks([ok('db'), failing('identity', 'connection refused')]);
    expect(report.status).toBe('fail');
    expect(report.checks.db?.status).toBe('ok');
    expect(report.checks.identity).toMatchObject({ status: 'fail', error: 'connection refused' });
  });

  it('reports a non-Error rejection as text', async () => {
    const report = await runHealthChecks([{ name: 'weird', check: () => Promise.reject('nope') }]);
    expect(report.checks.weird).toMatchObject({ status: 'fail', error: 'nope' });
  });

  it('cuts off a check that never answers at the timeout and aborts its signal', async () => {
    // given a check that never resolves and remembers its signal
    let seen: AbortSignal | undefined;
    const hanging: HealthCheck = {
      name: 'hanging',
      check: (signal) => {
        seen = signal;
        return new Promise<void>(() => undefined);
      },
    };
    // when the checks run with a 50 ms timeout
    const started = performance.now();
    const report = await runHealthChecks([hanging, ok('fast')], 50);
    const elapsed = performance.now() - started;
    // then the report comes back soon after, with the hanging check failed
    expect(elapsed).toBeGreaterThanOrEqual(40);
    expect(elapsed).toBeLessThan(1000);
    expect(report.status).toBe('fail');
    expect(report.checks.hanging?.status).toBe('fail');
    expect(report.checks.hanging?.error).toEqual(expect.any(String));
    expect(report.checks.fast?.status).toBe('ok');
    expect(seen?.aborted).toBe(true);
  });

});

describe('runHealthChecks with fake time', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('reports a hanging check exactly at the timeout, with a TimeoutError on its signal', async () => {
    // given fake time and a check that never answers
    vi.useFakeTimers();
    let seen: AbortSignal | undefined;
    const hanging: HealthCheck = {
      name: 'hanging',
      check: (signal) => {
        seen = signal;
        return new Promise<void>(() => undefined);
      },
    };
    let report: HealthReport | undefined;
    void runHealthChecks([hanging], 2000).then((r) => (report = r));
    // when time passes up to the timeout
    await vi.advanceTimersByTimeAsync(1999);
    expect(report).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    // then the report is in, and the check was told why it was aborted
    expect(report).toMatchObject({ status: 'fail', checks: { hanging: { status: 'fail' } } });
    expect((seen?.reason as Error | undefined)?.name).toBe('TimeoutError');
  });

  it('runs the checks at once, not one after another', async () => {
    // given three checks that each take 100 ms
    vi.useFakeTimers();
    const slow = (name: string): HealthCheck => ({ name, check: () => new Promise((resolve) => setTimeout(resolve, 100)) });
    let report: HealthReport | undefined;
    void runHealthChecks([slow('a'), slow('b'), slow('c')], 1000).then((r) => (report = r));
    // when 100 ms pass
    await vi.advanceTimersByTimeAsync(100);
    // then all three have answered
    expect(report?.status).toBe('ok');
  });

  it('leaves no timer behind once every check has answered', async () => {
    vi.useFakeTimers();
    await runHealthChecks([ok('db')], 60_000);
    expect(vi.getTimerCount()).toBe(0);
  });
});
