/**
 * Time, injected: transports read the clock and start timers only through this, so a test
 * can drive visibility timeouts and backoffs on fake time. Structurally a `Clock` of
 * `@agora/resilience` fits (its timer handle is opaque here).
 */
export interface BusClock {
  /** Milliseconds since the epoch. */
  now(): number;
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/**
 * The real clock. Its timers are unref'd: they are a transport's own bookkeeping (an expiry
 * check, a redelivery), and must not keep a process alive that has nothing else to do.
 *
 * @example
 * const transport = createMemoryTransport({ clock: systemBusClock });
 */
export const systemBusClock: BusClock = {
  now: () => Date.now(),
  setTimeout(callback, ms) {
    const timer = setTimeout(callback, ms);
    timer.unref();
    return timer;
  },
  clearTimeout(handle) {
    clearTimeout(handle as NodeJS.Timeout);
  },
};

/** setTimeout's ceiling: a longer delay would fire at once. */
export const MAX_TIMER_MS = 2_147_483_647;
