import type { Clock, TimerHandle } from './clock.js';

/** A clock that moves only when told: `advance(ms)` fires the timers that fall due, in order. */
export interface FakeClock extends Clock {
  /** Moves time forward, firing due timers and letting the promises they settle run. */
  advance(ms: number): Promise<void>;
  /** Timers not yet fired. */
  pending(): number;
  set(now: number): void;
}

/**
 * @example
 * const clock = createFakeClock();
 * const breaker = new CircuitBreaker({ clock, consecutiveFailures: 3, openMs: 1000 });
 * await clock.advance(1000); // the breaker may now let a trial call through
 */
export function createFakeClock(start = Date.UTC(2026, 0, 1)): FakeClock {
  let now = start;
  let seq = 0;
  const timers = new Map<number, { at: number; callback: () => void }>();
  const flush = async () => {
    for (let i = 0; i < 10; i++) await Promise.resolve();
    await new Promise((resolve) => setImmediate(resolve));
  };
  return {
    now: () => now,
    setTimeout(callback, ms) {
      const id = ++seq;
      timers.set(id, { at: now + Math.max(0, ms), callback });
      return { id } as TimerHandle;
    },
    clearTimeout(handle) {
      timers.delete(handle.id as number);
    },
    async advance(ms) {
      const until = now + ms;
      await flush();
      for (;;) {
        const due = [...timers.entries()].filter(([, t]) => t.at <= until).sort((a, b) => a[1].at - b[1].at || a[0] - b[0])[0];
        if (due === undefined) break;
        timers.delete(due[0]);
        now = Math.max(now, due[1].at);
        due[1].callback();
        await flush();
      }
      now = until;
      await flush();
    },
    pending: () => timers.size,
    set(value) {
      now = value;
    },
  };
}
