import type { BusClock } from '../../clock.js';
import type { TopicListener } from './topic-listeners.js';

/** What {@link waitForRoom} needs of its transport. */
export interface RoomWatch {
  readonly clock: BusClock;
  /** The longest wait: a notification may be lost, so look again after this anyway. */
  readonly pollIntervalMs: number;
  /** Subscribes to the topic's notifications; resolves to the unsubscribe function. */
  readonly subscribe: (topic: string, listener: TopicListener) => Promise<() => void>;
}

/**
 * Parks a publish to a full onFull 'wait' topic until a delivery of it is settled (the
 * 'settled' notification), the poll interval passes, or `signal` aborts (rejecting with its
 * reason). The caller then simply tries again.
 *
 * @example
 * await waitForRoom({ clock, pollIntervalMs, subscribe: (t, l) => notifier.subscribe(t, l) }, topic, signal);
 */
export async function waitForRoom(watch: RoomWatch, topic: string, signal: AbortSignal | undefined): Promise<void> {
  signal?.throwIfAborted();
  let unsubscribe: (() => void) | undefined;
  let timer: unknown;
  let onAbort: (() => void) | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      onAbort = () => reject(signal?.reason);
      signal?.addEventListener('abort', onAbort, { once: true });
      timer = watch.clock.setTimeout(resolve, watch.pollIntervalMs);
      void watch
        .subscribe(topic, (event) => {
          if (event === 'settled') resolve();
        })
        .then((off) => {
          unsubscribe = off;
        });
    });
  } finally {
    unsubscribe?.();
    if (timer !== undefined) watch.clock.clearTimeout(timer);
    if (onAbort !== undefined) signal?.removeEventListener('abort', onAbort);
  }
}
