/** A timer started by a {@link Clock}. */
export type TimerHandle = { readonly id: unknown };

/**
 * Time, injected. Every policy takes one, so tests run on fake time and never sleep
 * (see `createFakeClock` in `@agora/resilience/testing`).
 */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  setTimeout(callback: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

/**
 * The real clock. Its timers keep the process alive like any timer: a retry waiting to try
 * again is work still to do.
 */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout(callback, ms) {
    return { id: setTimeout(callback, ms) };
  },
  clearTimeout(handle) {
    clearTimeout(handle.id as NodeJS.Timeout);
  },
};

/**
 * Waits `ms` on `clock`; rejects with the signal's reason if it aborts first.
 * @example
 * await sleep(systemClock, 100, AbortSignal.timeout(50)); // rejects after 50 ms
 */
export function sleep(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clock.clearTimeout(handle);
      reject(signal?.reason);
    };
    const handle = clock.setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
