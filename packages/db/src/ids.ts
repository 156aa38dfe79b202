import { DbError } from './errors.js';

// Layout, most significant first: 1 sign bit (always 0, so ids fit a signed int8), 41 bits of
// milliseconds since the epoch, 10 bits of node id, 12 bits of sequence. Time leads, so ids sort
// by creation time across nodes (k-sortable), which keeps B-tree inserts at the right edge and
// lets posts and users be range-partitioned by id later.
const NODE_BITS = 10n;
const SEQUENCE_BITS = 12n;
const TIMESTAMP_SHIFT = NODE_BITS + SEQUENCE_BITS;
const MAX_NODE = 1023;
const MAX_SEQUENCE = 4095;
const MAX_TIMESTAMP = 2 ** 41 - 1;
const MAX_ID = (1n << 63n) - 1n;
// How many clock reads to spend waiting for the next millisecond after the sequence overflows.
// A real clock ticks long before this; a frozen or stalled one (a fake clock in tests, a
// suspended VM) must not hang `next()`, so the generator then borrows the next millisecond.
const MAX_SPINS = 100_000;

/**
 * The default id epoch: 2025-01-01T00:00:00Z.
 *
 * @example
 * ```ts
 * idTimestamp(id, DEFAULT_ID_EPOCH_MS);
 * ```
 */
export const DEFAULT_ID_EPOCH_MS = Date.UTC(2025, 0, 1);

/** Options of {@link createIdGenerator}. */
export interface IdGeneratorOptions {
  /** This process's node id, 0..1023; it must be unique among processes writing at once. */
  nodeId: number;
  /** Milliseconds since the Unix epoch at which id time starts. Never change it once ids exist. */
  epochMs?: number;
  /** The clock, injectable for tests. */
  now?: () => number;
}

/** Makes ids; see {@link createIdGenerator}. */
export interface IdGenerator {
  /** The next id: strictly greater than every id this generator returned before. */
  next(): bigint;
}

/**
 * Creates a Snowflake id generator: 41 bits of milliseconds since `epochMs`, 10 bits of
 * `nodeId`, 12 bits of sequence (4096 ids per millisecond per node).
 *
 * Ids are strictly increasing per generator even if the clock goes backwards: the generator
 * keeps using its last millisecond (and, once that millisecond's sequence is used up, borrows
 * the following ones) until the clock catches up, so it never returns a duplicate and never
 * blocks for long. When the sequence overflows on a healthy clock, it waits for the next
 * millisecond. Across nodes, uniqueness rests on distinct node ids.
 *
 * Ids are bigints in code, `bigint` columns in PostgreSQL and decimal strings in JSON (they
 * exceed `Number.MAX_SAFE_INTEGER`); see {@link parseId}. The low bits are mostly a zero
 * sequence under light load, so shard by a hash of the id or by id range, never by `id % n`.
 *
 * @example
 * ```ts
 * const ids = createIdGenerator({ nodeId: 7 });
 * const id = ids.next();            // 1234567890123456789n
 * JSON.stringify({ id: id.toString() });
 * idTimestamp(id);                  // the Date it was made
 * ```
 */
export function createIdGenerator(options: IdGeneratorOptions): IdGenerator {
  const { nodeId, epochMs = DEFAULT_ID_EPOCH_MS, now = Date.now } = options;
  if (!Number.isInteger(nodeId) || nodeId < 0 || nodeId > MAX_NODE) {
    throw new DbError('DB_ID_INVALID_NODE', `node id must be an integer in 0..${MAX_NODE}, got ${nodeId}`, {
      details: { nodeId },
    });
  }
  const node = BigInt(nodeId) << SEQUENCE_BITS;
  let lastMs = -1;
  let sequence = 0;

  const clockMs = (): number => Math.floor(now()) - epochMs;

  const nextMillisecond = (after: number): number => {
    for (let spin = 0; spin < MAX_SPINS; spin++) {
      const ms = clockMs();
      if (ms > after) return ms;
      // Clock behind us (it went backwards): waiting could take seconds, so borrow instead.
      if (ms < after) break;
    }
    return after + 1;
  };

  return {
    next(): bigint {
      const clock = clockMs();
      if (lastMs < 0 && clock < 0) {
        throw new DbError('DB_ID_CLOCK_BEFORE_EPOCH', `the clock (${now()}) is before the id epoch (${epochMs})`, {
          details: { now: now(), epochMs },
        });
      }
      let ms = Math.max(clock, lastMs);
      if (ms === lastMs) {
        sequence = (sequence + 1) & MAX_SEQUENCE;
        if (sequence === 0) ms = nextMillisecond(lastMs);
      } else {
        sequence = 0;
      }
      if (ms > MAX_TIMESTAMP) {
        throw new DbError('DB_ID_EXHAUSTED', 'the 41-bit id timestamp has overflowed; choose a later epoch', {
          details: { epochMs },
        });
      }
      lastMs = ms;
      return (BigInt(ms) << TIMESTAMP_SHIFT) | node | BigInt(sequence);
    },
  };
}

/**
 * The creation time encoded in an id.
 *
 * @example
 * ```ts
 * idTimestamp(ids.next()).toISOString(); // '2025-06-01T12:00:00.000Z'
 * ```
 */
export function idTimestamp(id: bigint, epochMs: number = DEFAULT_ID_EPOCH_MS): Date {
  return new Date(Number(id >> TIMESTAMP_SHIFT) + epochMs);
}

/**
 * The node id encoded in an id.
 *
 * @example
 * ```ts
 * idNode(createIdGenerator({ nodeId: 7 }).next()); // 7
 * ```
 */
export function idNode(id: bigint): number {
  return Number((id >> SEQUENCE_BITS) & BigInt(MAX_NODE));
}

/**
 * Parses the decimal string form of an id (as found in JSON, URLs and `bigint` columns read by
 * pg), throwing `DB_INVALID_ID` for anything else, including values outside 0..2^63-1.
 *
 * @example
 * ```ts
 * const id = parseId(request.params.postId);
 * ```
 */
export function parseId(value: string): bigint {
  if (!/^(0|[1-9][0-9]{0,18})$/.test(value) || BigInt(value) > MAX_ID) {
    throw new DbError('DB_INVALID_ID', `"${value}" is not a valid id`, { details: { value } });
  }
  return BigInt(value);
}
