export { sleep, systemClock, type Clock, type TimerHandle } from './clock.js';
export { EventEmitter, type Disposable, type Event } from './events.js';
export {
  BrokenCircuitError,
  BulkheadRejectedError,
  isBrokenCircuitError,
  isBulkheadRejectedError,
  isResilienceConfigError,
  isResilienceError,
  isTaskTimeoutError,
  ResilienceConfigError,
  ResilienceError,
  ResilienceErrorCodes,
  TaskTimeoutError,
  type ResilienceErrorCode,
} from './errors.js';
export { contextOf, noop, wrap, type ExecuteContext, type ExecuteOptions, type Policy, type Task } from './policy.js';
export * from './breaker.js';
export { constantBackoff, exponentialBackoff, type Backoff, type ExponentialBackoffOptions, type Jitter } from './backoff.js';
export { isRetryable, RetryPolicy, type GiveUpEvent, type GiveUpReason, type RetryEvent, type RetryOptions } from './retry.js';
export { parseRetryAfter } from './retry-after.js';
export { RetryBudget, type RetryBudgetOptions } from './budget.js';
export { TimeoutPolicy, type TimeoutOptions, type TimeoutStrategy } from './timeout.js';
export { BulkheadPolicy, type BulkheadOptions } from './bulkhead.js';
export { FallbackPolicy, type FallbackOptions } from './fallback.js';
export * from './rate-limit/index.js';
