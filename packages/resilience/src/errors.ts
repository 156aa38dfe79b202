/**
 * The resilience catalogue. Each error carries a stable `code` and a flag read by guards
 * (`isBrokenCircuitError(err)`), so checks hold across two copies of the package.
 */
export const ResilienceErrorCodes = {
  /** A call was refused because the circuit is open (or isolated by hand). */
  CIRCUIT_OPEN: 'circuit_open',
  /** A call did not finish within its timeout. */
  TIMEOUT: 'timeout',
  /** A bulkhead had no free slot and no room in its queue. */
  BULKHEAD_FULL: 'bulkhead_full',
  /** An option given to a policy is out of range. */
  INVALID_OPTION: 'invalid_option',
} as const;

export type ResilienceErrorCode = (typeof ResilienceErrorCodes)[keyof typeof ResilienceErrorCodes];

const FLAG = Symbol.for('agora.resilience.error');

/** Base of every error this package throws. */
export class ResilienceError extends Error {
  readonly [FLAG]: ResilienceErrorCode;
  constructor(
    readonly code: ResilienceErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'ResilienceError';
    this[FLAG] = code;
  }
}

function hasCode(err: unknown, code: ResilienceErrorCode): boolean {
  return typeof err === 'object' && err !== null && (err as Record<symbol, unknown>)[FLAG] === code;
}

/**
 * The circuit is open: the call was not made. `retryAt` says when a trial call may go through.
 * Not retryable by default: retrying the same breaker within its open period only fails again
 * (a caller with several instances retries elsewhere with its own filter, as the gateway does).
 */
export class BrokenCircuitError extends ResilienceError {
  readonly retryable = false;
  constructor(
    readonly retryAt: number,
    readonly isolated: boolean,
  ) {
    super(
      ResilienceErrorCodes.CIRCUIT_OPEN,
      isolated ? 'the circuit is isolated by hand; calls are refused until it is reset' : `the circuit is open; calls are refused until ${new Date(retryAt).toISOString()}`,
    );
    this.name = 'BrokenCircuitError';
  }
}

export class TaskTimeoutError extends ResilienceError {
  constructor(
    readonly timeoutMs: number,
    options?: { cause?: unknown },
  ) {
    super(ResilienceErrorCodes.TIMEOUT, `the operation did not finish within ${timeoutMs} ms`, options);
    this.name = 'TaskTimeoutError';
  }
}

export class BulkheadRejectedError extends ResilienceError {
  constructor(
    readonly maxConcurrent: number,
    readonly maxQueued: number,
  ) {
    super(ResilienceErrorCodes.BULKHEAD_FULL, `the bulkhead is full (${maxConcurrent} running, ${maxQueued} queued)`);
    this.name = 'BulkheadRejectedError';
  }
}

/** A policy was built with an option out of range; `option` names it. */
export class ResilienceConfigError extends ResilienceError {
  constructor(
    readonly option: string,
    message: string,
  ) {
    super(ResilienceErrorCodes.INVALID_OPTION, `${option}: ${message}`);
    this.name = 'ResilienceConfigError';
  }
}

export const isResilienceError = (err: unknown): err is ResilienceError =>
  typeof err === 'object' && err !== null && typeof (err as Record<symbol, unknown>)[FLAG] === 'string';
export const isBrokenCircuitError = (err: unknown): err is BrokenCircuitError => hasCode(err, ResilienceErrorCodes.CIRCUIT_OPEN);
export const isTaskTimeoutError = (err: unknown): err is TaskTimeoutError => hasCode(err, ResilienceErrorCodes.TIMEOUT);
export const isBulkheadRejectedError = (err: unknown): err is BulkheadRejectedError => hasCode(err, ResilienceErrorCodes.BULKHEAD_FULL);
export const isResilienceConfigError = (err: unknown): err is ResilienceConfigError => hasCode(err, ResilienceErrorCodes.INVALID_OPTION);

/** Checks used by every constructor: an invalid option fails at construction, naming it. */
export const check = {
  positiveInt(option: string, value: number | undefined): void {
    if (value !== undefined && (!Number.isInteger(value) || value < 1)) throw new ResilienceConfigError(option, `must be an integer >= 1, got ${value}`);
  },
  nonNegativeInt(option: string, value: number | undefined): void {
    if (value !== undefined && (!Number.isInteger(value) || value < 0)) throw new ResilienceConfigError(option, `must be an integer >= 0, got ${value}`);
  },
  positive(option: string, value: number | undefined): void {
    if (value !== undefined && !(Number.isFinite(value) && value > 0)) throw new ResilienceConfigError(option, `must be a number > 0, got ${value}`);
  },
  nonNegative(option: string, value: number | undefined): void {
    if (value !== undefined && !(Number.isFinite(value) && value >= 0)) throw new ResilienceConfigError(option, `must be a number >= 0, got ${value}`);
  },
  ratio(option: string, value: number | undefined): void {
    if (value !== undefined && !(Number.isFinite(value) && value > 0 && value <= 1)) throw new ResilienceConfigError(option, `must be in (0, 1], got ${value}`);
  },
};
