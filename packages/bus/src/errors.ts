/** The bus catalogue: stable codes, flag-based guards (hold across two copies of the package). */
export const BusErrorCodes = {
  UNKNOWN_TOPIC: 'unknown_topic',
  UNKNOWN_MESSAGE_TYPE: 'unknown_message_type',
  MESSAGE_TOO_LARGE: 'message_too_large',
  QUEUE_FULL: 'queue_full',
  INVALID_MESSAGE: 'invalid_message',
  REQUEST_TIMEOUT: 'request_timeout',
  TRANSPORT_CLOSED: 'transport_closed',
  INVALID_OPTION: 'invalid_option',
} as const;

export type BusErrorCode = (typeof BusErrorCodes)[keyof typeof BusErrorCodes];

const FLAG = Symbol.for('agora.bus.error');

export class BusError extends Error {
  readonly [FLAG] = true;
  /** A publisher may try again later (a full queue, a closed transport being replaced). */
  readonly retryable: boolean;
  constructor(
    readonly code: BusErrorCode,
    message: string,
    readonly details: Readonly<Record<string, unknown>> = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'BusError';
    this.retryable = code === BusErrorCodes.QUEUE_FULL || code === BusErrorCodes.REQUEST_TIMEOUT;
  }
}

export function isBusError(err: unknown, code?: BusErrorCode): err is BusError {
  if (typeof err !== 'object' || err === null || (err as Record<symbol, unknown>)[FLAG] !== true) return false;
  return code === undefined || (err as BusError).code === code;
}
