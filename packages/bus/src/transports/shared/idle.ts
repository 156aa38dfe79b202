import { MAX_TIMER_MS, type BusClock } from '../../clock.js';

/**
 * A stopping consumer's wait for its running handlers, for consumers that count them (memory,
 * NATS): `wait` resolves at the first `notify()` (the count reached zero) or after the grace.
 *
 * @example
 * if (running > 0 && graceMs > 0) await this.idle.wait(clock, graceMs);
 * // where a handler ends: if (--running === 0) this.idle.notify();
 */
export class IdleWait {
  private onIdle: (() => void) | undefined;

  /** Resolves on `notify()` or after `graceMs` (capped at the longest timer), whichever first. */
  async wait(clock: BusClock, graceMs: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = clock.setTimeout(resolve, Math.min(graceMs, MAX_TIMER_MS));
      this.onIdle = () => {
        clock.clearTimeout(timer);
        resolve();
      };
    });
    this.onIdle = undefined;
  }

  /** The last running handler has ended. */
  notify(): void {
    this.onIdle?.();
  }
}
