/** Stops a listener. */
export interface Disposable {
  dispose(): void;
}

/** Subscribes to one kind of event: `breaker.onStateChange((change) => ...)`. */
export type Event<T> = (listener: (value: T) => void) => Disposable;

/**
 * A typed event source. Components fire; metrics, logs and the console listen. A listener
 * that throws does not break the component or the other listeners.
 * @example
 * const changed = new EventEmitter<{ from: string; to: string }>();
 * const sub = changed.event((c) => console.log(c.to));
 * changed.emit({ from: 'closed', to: 'open' });
 * sub.dispose();
 */
export class EventEmitter<T> {
  // One entry per subscription, so subscribing a function twice means two deliveries and
  // disposing one subscription leaves the other.
  readonly #listeners = new Set<{ listener: (value: T) => void }>();

  /** The subscribe function to expose as `onSomething`. */
  readonly event: Event<T> = (listener) => {
    const entry = { listener };
    this.#listeners.add(entry);
    return { dispose: () => this.#listeners.delete(entry) };
  };

  get size(): number {
    return this.#listeners.size;
  }

  emit(value: T): void {
    for (const { listener } of this.#listeners) {
      try {
        listener(value);
      } catch {
        // A faulty listener must not change what the policy does.
      }
    }
  }
}
