import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RetryBudget } from '../src/budget.js';
import { createFakeClock } from '../src/testing.js';
import { configError } from './helpers.js';

function withdrawAll(budget: RetryBudget): number {
  let taken = 0;
  while (budget.tryWithdraw()) taken++;
  return taken;
}


describe('RetryBudget', () => {
  it('allows ratio * calls retries in the window when the floor is 0', () => {
    const clock = createFakeClock();
    const budget = new RetryBudget({ ratio: 0.2, minPerSecond: 0, clock });
    expect(budget.tryWithdraw()).toBe(false);
    for (let i = 0; i < 100; i++) budget.recordCall();
    expect(budget.available).toBeCloseTo(20);
    expect(withdrawAll(budget)).toBe(20);
    expect(budget.available).toBeCloseTo(0);
  });

  it('adds minPerSecond * window seconds, so a quiet service can still retry', () => {
    const clock = createFakeClock();
    const budget = new RetryBudget({ ratio: 0.1, minPerSecond: 2, windowMs: 5_000, clock });
    expect(withdrawAll(budget)).toBe(10);
    budget.recordCall();
    expect(budget.tryWithdraw()).toBe(false); // 0.1 of a retry is not one
    for (let i = 0; i < 9; i++) budget.recordCall();
    expect(withdrawAll(budget)).toBe(1);
  });

  it('defaults to 10 retries a second over 10 s on top of the ratio', () => {
    const budget = new RetryBudget({ ratio: 0.5, clock: createFakeClock() });
    expect(withdrawAll(budget)).toBe(100);
  });

  it('forgets calls and retries once they leave the window', async () => {
    const clock = createFakeClock();
    const budget = new RetryBudget({ ratio: 1, minPerSecond: 0, windowMs: 1_000, clock });
    for (let i = 0; i < 5; i++) budget.recordCall();
    expect(withdrawAll(budget)).toBe(5);

    await clock.advance(500);
    for (let i = 0; i < 3; i++) budget.recordCall();
    expect(withdrawAll(budget)).toBe(3);

    // The first 5 calls and their 5 retries expire together: 3 calls, 3 retries remain.
    await clock.advance(500);
    expect(budget.tryWithdraw()).toBe(false);
    budget.recordCall();
    expect(withdrawAll(budget)).toBe(1);

    // Far later, everything has expired, including buckets whose slots were not reused.
    await clock.advance(10_000);
    expect(budget.available).toBe(0);
    budget.recordCall();
    expect(withdrawAll(budget)).toBe(1);
  });

  it('never lets retries in the window (ten buckets) exceed ratio * calls + floor, for any sequence', () => {
    const step = fc.oneof(
      fc.record({ kind: fc.constant('call' as const) }),
      fc.record({ kind: fc.constant('retry' as const) }),
      fc.record({ kind: fc.constant('wait' as const), ms: fc.integer({ min: 0, max: 3_000 }) }),
    );
    fc.assert(
      fc.property(fc.double({ min: 0.01, max: 1, noNaN: true }), fc.integer({ min: 0, max: 3 }), fc.array(step, { maxLength: 300 }), (ratio, minPerSecond, steps) => {
        const clock = createFakeClock(0);
        const windowMs = 1_000;
        const budget = new RetryBudget({ ratio, minPerSecond, windowMs, clock });
        const calls: number[] = [];
        const retries: number[] = [];
        for (const s of steps) {
          if (s.kind === 'wait') clock.set(clock.now() + s.ms);
          else if (s.kind === 'call') {
            budget.recordCall();
            calls.push(clock.now());
          } else if (budget.tryWithdraw()) {
            retries.push(clock.now());
            // The window is the current bucket (windowMs / 10 wide) and the nine before it.
            const bucketMs = windowMs / 10;
            const since = (Math.floor(clock.now() / bucketMs) - 9) * bucketMs;
            const inWindow = (times: number[]) => times.filter((t) => t >= since).length;
            expect(inWindow(retries)).toBeLessThanOrEqual(ratio * inWindow(calls) + minPerSecond + 1e-6);
          }
        }
      }),
    );
  });

  it('names the option it refuses', () => {
    expect(configError(() => new RetryBudget({ ratio: 0 })).option).toBe('ratio');
    expect(configError(() => new RetryBudget({ ratio: 1.5 })).option).toBe('ratio');
    expect(configError(() => new RetryBudget({ ratio: Number.NaN })).option).toBe('ratio');
    expect(configError(() => new RetryBudget({ ratio: 0.2, minPerSecond: -1 })).option).toBe('minPerSecond');
    expect(configError(() => new RetryBudget({ ratio: 0.2, windowMs: 0 })).option).toBe('windowMs');
  });
});
