import { EventEmitter, type Event } from './events.js';
import { contextOf, type ExecuteOptions, type Task } from './policy.js';

/**
 * @example
 * const options: FallbackOptions<Profile> = { fallback: (err) => cache.get(id), when: isTaskTimeoutError };
 */
export interface FallbackOptions<R> {
  /**
   * The value to return instead of failing, or a function of the error that makes it.
   * To fall back to a function value, return it from a function: `() => handler`.
   */
  fallback: R | ((err: unknown) => R | PromiseLike<R>);
  /** Which failures fall back; the rest are rethrown. Default: every failure. */
  when?: (err: unknown) => boolean;
}

/**
 * Returns a stand-in result when a call fails: a cached page, an empty list, a default.
 *
 * It is not a `Policy`: its result is `T | R`, not `T`, so `wrap` cannot hold it.
 * Put it outermost by hand, around the composed policy, which is where it belongs anyway
 * (a fallback inside a retry would hide the failures the retry is for):
 * @example
 * const fallback = new FallbackPolicy({ fallback: [] as Post[], when: (err) => !isResilienceConfigError(err) });
 * const policy = wrap(retry, timeout);
 * const posts = await fallback.execute((ctx) => policy.execute(({ signal }) => feed.load(userId, signal), ctx), { signal });
 */
export class FallbackPolicy<R> {
  readonly #produce: (err: unknown) => R | PromiseLike<R>;
  readonly #when: (err: unknown) => boolean;
  readonly #fallback = new EventEmitter<{ readonly error: unknown }>();

  /** Fires when a failure is replaced by the fallback; `error` is the failure. */
  readonly onFallback: Event<{ readonly error: unknown }> = this.#fallback.event;

  constructor(options: FallbackOptions<R>) {
    const { fallback } = options;
    // A function is always a producer: R cannot be told apart from it at run time.
    this.#produce = typeof fallback === 'function' ? (fallback as (err: unknown) => R | PromiseLike<R>) : () => fallback;
    this.#when = options.when ?? (() => true);
  }

  /** Runs `fn`; on a failure `when` accepts, returns the fallback (a failing fallback function rejects with its own error). */
  async execute<T>(fn: Task<T>, options?: ExecuteOptions): Promise<T | R> {
    try {
      return await fn(contextOf(options));
    } catch (error) {
      if (!this.#when(error)) throw error;
      this.#fallback.emit({ error });
      return await this.#produce(error);
    }
  }
}
