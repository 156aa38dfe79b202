import { assertSchemaName, type DbLogger } from '@agora/db';
import type pg from 'pg';
import type { Transport, TransportMessage } from '../transport.js';
import { outboxChannel, outboxDdl } from './outbox.js';

export interface OutboxRelayOptions {
  readonly pool: pg.Pool;
  /** The service schema whose outbox is relayed. */
  readonly schema: string;
  readonly transport: Transport;
  /** Messages taken per round (default 100). */
  readonly batchSize?: number;
  /** Safety-net poll when no NOTIFY arrives (default 1000 ms). */
  readonly pollIntervalMs?: number;
  readonly logger?: DbLogger;
  /** Told each time messages were published, for metrics. */
  readonly onPublished?: (count: number) => void;
}

interface Row {
  seq: string;
  id: string;
  topic: string;
  key: string | null;
  headers: Record<string, string>;
  body: string;
}

/**
 * Publishes a service's outbox in `seq` order. `seq` is taken at insert, so two concurrent
 * transactions can commit out of `seq` order; for one key that cannot happen, because the
 * writes of one key change the same aggregate row and so are serialized by its lock. Per-key
 * order is what consumers rely on, and it holds. A row not yet committed when a round reads
 * is not deleted by it (`DELETE` sees only committed rows) and goes in the next round.
 *
 * One relay per schema is active at a time (a session advisory lock held by its listener
 * connection); others wait, so several instances of a service can all run one. Rows are
 * deleted after the transport accepted them: a crash between the two publishes a batch
 * again, with the same message ids, which idempotent consumers drop.
 */
export function createOutboxRelay(options: OutboxRelayOptions) {
  assertSchemaName(options.schema);
  const batchSize = options.batchSize ?? 100;
  const pollIntervalMs = options.pollIntervalMs ?? 1000;
  let listener: pg.PoolClient | undefined;
  let running = false;
  let wake: (() => void) | undefined;
  let loop: Promise<void> | undefined;
  let timer: NodeJS.Timeout | undefined;

  async function relayOnce(): Promise<number> {
    const { rows } = await options.pool.query<Row>(
      `SELECT seq::text, id, topic, key, headers, body FROM ${options.schema}.outbox ORDER BY seq LIMIT $1`,
      [batchSize],
    );
    if (rows.length === 0) return 0;
    // Consecutive rows of one topic go in one publish call, in order.
    let start = 0;
    while (start < rows.length) {
      let end = start;
      while (end + 1 < rows.length && rows[end + 1]!.topic === rows[start]!.topic) end++;
      const batch: TransportMessage[] = rows.slice(start, end + 1).map((r) => ({ id: r.id, ...(r.key === null ? {} : { key: r.key }), headers: r.headers, body: r.body }));
      await options.transport.publish(rows[start]!.topic, batch);
      start = end + 1;
    }
    await options.pool.query(`DELETE FROM ${options.schema}.outbox WHERE seq <= $1`, [rows.at(-1)!.seq]);
    options.onPublished?.(rows.length);
    return rows.length;
  }

  async function run(): Promise<void> {
    while (running) {
      let published = 0;
      try {
        published = await relayOnce();
      } catch (err) {
        options.logger?.warn({ err, schema: options.schema }, 'outbox relay round failed; retrying');
      }
      if (published === batchSize) continue; // more waiting
      await new Promise<void>((resolve) => {
        wake = resolve;
        timer = setTimeout(resolve, pollIntervalMs);
      });
      clearTimeout(timer);
      wake = undefined;
    }
  }

  return {
    /** Creates the outbox table if missing, becomes the active relay (waiting if another is), and starts relaying. */
    async start(): Promise<void> {
      await options.pool.query(outboxDdl(options.schema));
      listener = await options.pool.connect();
      await listener.query('SELECT pg_advisory_lock(hashtext($1))', [`agora.outbox.${options.schema}`]);
      listener.on('notification', () => wake?.());
      await listener.query(`LISTEN ${outboxChannel(options.schema)}`);
      running = true;
      loop = run();
    },
    /** Finishes the round in progress, then releases the lock and the connection. */
    async stop(): Promise<void> {
      running = false;
      wake?.();
      await loop;
      if (listener !== undefined) {
        await listener.query('UNLISTEN *').catch(() => undefined);
        await listener.query('SELECT pg_advisory_unlock_all()').catch(() => undefined);
        listener.release();
        listener = undefined;
      }
    },
    /** Relays what is there now, once (tests, and a final flush). */
    flush: relayOnce,
  };
}

export type OutboxRelay = ReturnType<typeof createOutboxRelay>;
