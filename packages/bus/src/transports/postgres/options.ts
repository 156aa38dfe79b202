import type pg from 'pg';
import type { DbLogger } from '@agora/db';
import type { BusClock } from '../../clock.js';

export { describeError, invalidOption, unknownTopic } from '../shared/errors.js';
export { DEFAULT_MAX_MESSAGE_BYTES } from '../shared/validate.js';

/** Options of `createPostgresTransport`. Give `pool` or `url`. */
export interface PostgresTransportOptions {
  /** A pool to use; the transport never ends it. Tables are schema-qualified, so its search_path does not matter. */
  readonly pool?: pg.Pool;
  /** Or a URL: the transport creates its own pool (and ends it on `close()`). */
  readonly url?: string;
  /** Schema of the transport's tables, migrated on first use. Default `'bus'`. */
  readonly schema?: string;
  readonly logger?: DbLogger;
  /** Safety-net poll of every consumer (missed NOTIFYs, backoff ends, expired leases elsewhere). Default 1 000. */
  readonly pollIntervalMs?: number;
  /** Grace given to consumers when `close()` stops them. Default 5 000. */
  readonly closeGraceMs?: number;
  /**
   * JS-side time only: poll timers, visibility-timeout signals, backoff wake-ups. Leases and
   * backoff themselves compare with the database's `now()`, one clock for every process.
   */
  readonly clock?: BusClock;
}

export const DEFAULT_SCHEMA = 'bus';
export const DEFAULT_POLL_INTERVAL_MS = 1_000;
export const DEFAULT_GRACE_MS = 5_000;

/**
 * The NOTIFY channel of a schema. Payloads: `p:<topic>` (messages became claimable: publish,
 * new group, released leases, replay) and `s:<topic>` (a delivery of a bounded 'wait' topic
 * was settled: room for a waiting publisher).
 */
export function channelOf(schema: string): string {
  return `agora_bus.${schema}`;
}


/**
 * SQL for an error entry `{ at, attempt, error }`, `at` read from the server clock as ISO 8601
 * UTC with milliseconds (what `Date#toISOString` prints).
 */
export function errorEntrySql(attemptParam: string, errorParam: string): string {
  return `jsonb_build_object('at', to_char(now() at time zone 'utc', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'), 'attempt', ${attemptParam}::int, 'error', ${errorParam}::text)`;
}
