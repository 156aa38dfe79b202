/** What a policy hands to the function it runs. */
export interface ExecuteContext {
  /** Aborted when the caller gives up or a timeout policy fires; pass it on to I/O. */
  readonly signal: AbortSignal;
  /** 1 on the first try; a retry policy counts up, and policies inside it pass it on. */
  readonly attempt: number;
}

export interface ExecuteOptions {
  readonly signal?: AbortSignal;
  /** Set by an outer policy (a retry) for the policies and the function inside it. */
  readonly attempt?: number;
}

export type Task<T> = (context: ExecuteContext) => PromiseLike<T> | T;

/**
 * Every policy has this one shape, so any of them wraps any other.
 * @example
 * const result = await policy.execute(({ signal }) => fetch(url, { signal }), { signal: request.signal });
 */
export interface Policy {
  execute<T>(fn: Task<T>, options?: ExecuteOptions): Promise<T>;
}

/**
 * The context handed to a task when the caller gave no signal. An `AbortController` per call
 * costs more than a whole closed-breaker call, and most tasks on a hot path never read the
 * signal, so it is made only when read. A fresh one rather than one shared never-aborted
 * signal, so listeners a task forgets to remove die with the call.
 */
class LazyContext implements ExecuteContext {
  #signal: AbortSignal | undefined;
  constructor(readonly attempt: number) {}
  get signal(): AbortSignal {
    return (this.#signal ??= new AbortController().signal);
  }
}

/** The context a policy that does not change it passes on. */
export function contextOf(options: ExecuteOptions | undefined, signal?: AbortSignal): ExecuteContext {
  const given = signal ?? options?.signal;
  const attempt = options?.attempt ?? 1;
  return given === undefined ? new LazyContext(attempt) : { signal: given, attempt };
}

/**
 * Composes policies: the first is the outermost. `wrap(retry, breaker, timeout)` retries
 * calls that go through a breaker, each try bounded by the timeout.
 * @example
 * const policy = wrap(retry, breaker, timeout);
 * await policy.execute(({ signal }) => callUpstream(signal));
 */
export function wrap(...policies: readonly Policy[]): Policy {
  return {
    execute<T>(fn: Task<T>, options?: ExecuteOptions): Promise<T> {
      const innermost = async (o: ExecuteOptions) => fn(contextOf(o));
      const chain = policies.reduceRight<(o: ExecuteOptions) => Promise<T>>(
        (inner, policy) => (o) => policy.execute((context) => inner({ signal: context.signal, attempt: context.attempt }), o),
        innermost,
      );
      return chain(options ?? {});
    },
  };
}

/** The identity policy: runs the function as it is. */
export const noop: Policy = {
  execute: async (fn, options) => fn(contextOf(options)),
};
