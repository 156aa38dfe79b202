import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CountWindow, TimeWindow } from '../src/breaker-window.js';

const t0 = Date.UTC(2026, 0, 1);

describe('CountWindow', () => {
  it('keeps the last size outcomes', () => {
    const window = new CountWindow(3);
    for (const failed of [true, true, false, false]) window.record(failed, t0);
    expect([window.calls, window.failures]).toEqual([3, 1]);
    window.record(false, t0);
    expect([window.calls, window.failures]).toEqual([3, 0]);
    window.clear();
    expect([window.calls, window.failures]).toEqual([0, 0]);
  });

  it('agrees with the last size entries of the full history', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 10 }), fc.array(fc.boolean(), { maxLength: 50 }), (size, history) => {
        const window = new CountWindow(size);
        history.forEach((failed, i) => {
          window.record(failed, t0);
          const last = history.slice(Math.max(0, i + 1 - size), i + 1);
          expect([window.calls, window.failures]).toEqual([last.length, last.filter(Boolean).length]);
        });
      }),
      { numRuns: 200 },
    );
  });
});

describe('TimeWindow', () => {
  it('drops each bucket as the clock passes it, and everything after a long idle', () => {
    const window = new TimeWindow(10_000, 10);
    for (let i = 0; i < 10; i++) window.record(true, t0 + i * 1000);
    expect([window.calls, window.failures]).toEqual([10, 10]);
    // At 12 s the window holds the buckets starting at 3 s to 12 s: those of 0, 1 and 2 s are gone.
    window.expire(t0 + 12_000);
    expect([window.calls, window.failures]).toEqual([7, 7]);
    // Idle for many window lengths: every slot is cleared, including the one the new bucket lands in.
    window.expire(t0 + 1_000_000 + 500);
    expect([window.calls, window.failures]).toEqual([0, 0]);
    window.record(false, t0 + 1_000_000 + 600);
    expect([window.calls, window.failures]).toEqual([1, 0]);
  });

  it('keeps counting in the newest bucket when the clock steps back', () => {
    const window = new TimeWindow(1000, 4);
    window.record(true, t0 + 5000);
    window.record(true, t0 + 4000);
    expect([window.calls, window.failures]).toEqual([2, 2]);
    window.expire(t0 + 6000);
    expect(window.calls).toBe(0);
  });

  it('agrees with the outcomes whose bucket is among the last buckets buckets', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5000 }),
        fc.integer({ min: 1, max: 12 }),
        fc.array(fc.tuple(fc.integer({ min: 0, max: 3000 }), fc.boolean()), { maxLength: 40, size: 'max' }),
        (ms, buckets, steps) => {
          const window = new TimeWindow(ms, buckets);
          const width = ms / buckets;
          const history: { at: number; failed: boolean }[] = [];
          let now = t0;
          for (const [advance, failed] of steps) {
            now += advance;
            window.record(failed, now);
            history.push({ at: now, failed });
            const live = history.filter((h) => Math.floor(h.at / width) > Math.floor(now / width) - buckets);
            expect([window.calls, window.failures]).toEqual([live.length, live.filter((h) => h.failed).length]);
          }
        },
      ),
      { numRuns: 200 },
    );
  });
});
