import type { SubscriptionSpec, TopicSpec } from '../../transport.js';
import { invalidOption } from './errors.js';

/** The contract's default for `TopicSpec.maxMessageBytes`, the same on every transport. */
export const DEFAULT_MAX_MESSAGE_BYTES = 256 * 1024;

/** A topic spec with its defaults applied. */
export interface CheckedTopicSpec {
  readonly partitions: number;
  readonly maxMessageBytes: number;
  readonly onFull: 'wait' | 'reject';
}

/**
 * Rejects a topic without a name. Separate from {@link checkTopicSpec} because postgres
 * leaves that to its table's constraints.
 *
 * @example
 * checkTopicName(spec);
 */
export function checkTopicName(spec: TopicSpec): void {
  if (typeof spec.name !== 'string' || spec.name === '') throw invalidOption('a topic needs a name', { name: spec.name });
}

/**
 * Applies the defaults of a topic spec and checks its numbers, before anything reaches the
 * engine (whose own errors would not carry the `invalid_option` code).
 *
 * @example
 * const { partitions, maxMessageBytes, onFull } = checkTopicSpec(spec);
 */
export function checkTopicSpec(spec: TopicSpec): CheckedTopicSpec {
  const partitions = spec.partitions ?? 1;
  const maxMessageBytes = spec.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  const onFull = spec.onFull ?? 'reject';
  if (!Number.isInteger(partitions) || partitions < 1) throw invalidOption(`partitions must be a positive integer, got ${partitions}`, { topic: spec.name, partitions });
  if (!Number.isInteger(maxMessageBytes) || maxMessageBytes < 1) throw invalidOption(`maxMessageBytes must be a positive integer, got ${maxMessageBytes}`, { topic: spec.name, maxMessageBytes });
  if (spec.maxUnacked !== undefined && (!Number.isInteger(spec.maxUnacked) || spec.maxUnacked < 1)) {
    throw invalidOption(`maxUnacked must be a positive integer, got ${spec.maxUnacked}`, { topic: spec.name, maxUnacked: spec.maxUnacked });
  }
  if (onFull !== 'wait' && onFull !== 'reject') throw invalidOption(`onFull must be 'wait' or 'reject', got ${String(onFull)}`, { topic: spec.name, onFull });
  return { partitions, maxMessageBytes, onFull };
}

/**
 * Checks what `consume` is given, before a group is declared for it.
 *
 * @example
 * checkSubscription(spec);
 */
export function checkSubscription(spec: SubscriptionSpec): void {
  const { maxInFlight, visibilityTimeoutMs, redelivery } = spec;
  if (!Number.isInteger(maxInFlight) || maxInFlight < 1) throw invalidOption(`maxInFlight must be a positive integer, got ${maxInFlight}`, { maxInFlight });
  if (!(visibilityTimeoutMs > 0)) throw invalidOption(`visibilityTimeoutMs must be positive, got ${visibilityTimeoutMs}`, { visibilityTimeoutMs });
  if (!Number.isInteger(redelivery.maxAttempts) || redelivery.maxAttempts < 1) {
    throw invalidOption(`redelivery.maxAttempts must be an integer >= 1, got ${redelivery.maxAttempts}`, { maxAttempts: redelivery.maxAttempts });
  }
}
