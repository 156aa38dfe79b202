import type { Redis } from 'ioredis';
import type { DbLogger } from '@agora/db';
import type { BusClock } from '../../clock.js';
import { BusError, BusErrorCodes } from '../../errors.js';

export { describeError, invalidOption, unknownTopic } from '../shared/errors.js';
export { DEFAULT_MAX_MESSAGE_BYTES } from '../shared/validate.js';

/** Options of `createRedisStreamsTransport`. Give `redis` or `url`. */
export interface RedisStreamsTransportOptions {
  /** A client to use for commands; the transport never quits it (it duplicates it for pub/sub). */
  readonly redis?: Redis;
  /** Or a URL (`redis://`, `rediss://`): the transport makes its own clients and quits them on `close()`. */
  readonly url?: string;
  /** Put before every key and the notification channel; default `bus:`. Must not hold `{`. */
  readonly prefix?: string;
  /** Safety-net poll of every consumer (missed notifications, other processes' backoffs). Default 1 000. */
  readonly pollIntervalMs?: number;
  /** Grace given to consumers when `close()` stops them. Default 5 000. */
  readonly closeGraceMs?: number;
  readonly logger?: DbLogger;
  /**
   * JS-side time only: poll timers, visibility-timeout signals, backoff wake-ups. Leases and
   * backoffs themselves compare with the server's TIME, one clock for every process.
   */
  readonly clock?: BusClock;
}

export const DEFAULT_PREFIX = 'bus:';
export const DEFAULT_POLL_INTERVAL_MS = 1_000;
export const DEFAULT_GRACE_MS = 5_000;

/** The keys of one topic. */
export interface TopicKeys {
  /** Hash: partitions, maxMessageBytes, maxUnacked, onFull, `pending:<group>`, `dead:<group>`. */
  readonly meta: string;
  /** Set: the declared groups. */
  readonly groups: string;
  /** Stream: the topic's dead letters, every group's. */
  readonly dlq: string;
  /**
   * Stream of partition `p`, with a consumer group per declared group. Entry fields: `id`
   * (message id), `k` (key, absent when none), `h` (headers as JSON), `b` (body), and `o`
   * on a replayed message (the one group it is for).
   */
  stream(partition: number): string;
  /** Hash: the group's head per partition (see scripts.ts). */
  heads(group: string): string;
}

/**
 * Where a topic lives: `<prefix>{<topic>}:meta`, `:groups`, `:dlq`, `:p<n>`, `:heads:<group>`.
 * The braces make the topic the hash tag, so one topic's keys share a Redis Cluster slot and
 * every script runs on one node.
 *
 * @example
 * redisStreamsKeys('bus:', 'orders').stream(3); // 'bus:{orders}:p3'
 */
export function redisStreamsKeys(prefix: string, topic: string): TopicKeys {
  const base = `${prefix}{${topic}}`;
  return {
    meta: `${base}:meta`,
    groups: `${base}:groups`,
    dlq: `${base}:dlq`,
    stream: (partition) => `${base}:p${partition}`,
    heads: (group) => `${base}:heads:${group}`,
  };
}

/** The set of every declared topic (for listing dead letters across topics). */
export const topicsKey = (prefix: string): string => `${prefix}topics`;

/** The pub/sub channel: `p:<topic>` (something became claimable), `s:<topic>` (room made on an onFull 'wait' topic). */
export const channelKey = (prefix: string): string => `${prefix}events`;

export function closedError(): BusError {
  return new BusError(BusErrorCodes.TRANSPORT_CLOSED, 'the redis-streams transport is closed');
}
