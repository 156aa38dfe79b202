import { BusError, BusErrorCodes } from '../../errors.js';

/**
 * The text a failed attempt records: an error's `message`, or the thrown value as text.
 * One rule for memory, postgres and redis-streams so a dead letter reads the same whichever
 * transport made it (NATS keeps its own, which also spells out plain objects as JSON).
 *
 * @example
 * describeError(new Error('boom')); // 'boom'
 */
export function describeError(error: unknown): string {
  if (typeof error === 'object' && error !== null && 'message' in error) {
    const message = (error as { message: unknown }).message;
    if (message !== undefined && message !== null) return String(message);
  }
  return String(error);
}

/**
 * A rejected option or spec, as every transport reports it.
 *
 * @example
 * throw invalidOption(`pollIntervalMs must be positive, got ${ms}`, { pollIntervalMs: ms });
 */
export function invalidOption(message: string, details: Record<string, unknown>): BusError {
  return new BusError(BusErrorCodes.INVALID_OPTION, message, details);
}

/**
 * A topic that was never declared (postgres and redis-streams word it alike).
 *
 * @example
 * if (row === undefined) throw unknownTopic(topic);
 */
export function unknownTopic(topic: string): BusError {
  return new BusError(BusErrorCodes.UNKNOWN_TOPIC, `topic "${topic}" is not declared`, { topic });
}
