import { assertSchemaName, withTransaction, type DbLogger, type Queryable } from '@agora/db';
import type pg from 'pg';
import type { Transport, TransportMessage } from '../transport.js';
import { outboxChannel, outboxDdl } from './outbox.js';

export interface OutboxRelayOptions {
  readonly pool: pg.Pool;
  /** The service schema whose outbox is relayed. */
  readonly schema: string;
  readonly transport: Transport;
  /**
   * Publishes inside the relay's own transaction, the one that deletes the rows: for a
   * transport living in the same database (the postgres transport's `publishWithin`). The
   * publish and the delete then commit together, so no crash can publish a row twice.
   * Without it the relay calls `transport.publish` and deletes afterwards (at-least-once).
   * @example
   * createOutboxRelay({ pool, schema: 'social', transport, publishWithin: (tx, topic, messages) => transport.publishWithin(tx, topic, messages) });
   */
  readonly publishWithin?: (client: Queryable, topic: string, messages: readonly TransportMessage[]) => Promise<void>;
  /** Messages taken per round (default 100). */
  readonly batchSize?: number;
  /** Safety-net poll when no NOTIFY arrives, and how often a standby relay tries for the lock (default 1000 ms). */
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
 * transactions can commit out of `seq` order; for one key that cannot happen as long as the
 * writes of one key change the same aggregate row (and so are serialized by its lock) before
 * they enqueue. Per-key order is what consumers rely on, and it holds. A row not yet
 * committed when a round reads is skipped by it and goes in a later round: a round deletes
 * exactly the rows it published, by `seq`, never a range.
 *
 * One relay per schema is active at a time (a session advisory lock held by its listener
 * connection); the others stand by, trying for the lock every `pollIntervalMs`, and one takes
 * over when the active relay stops or its connection dies. So every instance of a service
 * can run one.
 *
 * Delivery: with `publishWithin` (a transport in the same database) publishing and deleting
 * are one transaction: exactly once. Otherwise rows are deleted after the transport accepted
 * them: a crash between the two publishes a batch again, with the same message ids, which
 * idempotent consumers (`postgresDedupStore`) drop — at-least-once, exactly-once in effect.
 *
 * @example
 * const relay = createOutboxRelay({ pool, schema: 'social', transport });
 * await relay.start();
 * // ... on shutdown
 * await relay.stop();
 */
export function createOutboxRelay(options: OutboxRelayOptions) {
  assertSchemaName(options.schema);
  const { pool, schema, transport } = options;
  const batchSize = options.batchSize ?? 100;
  const pollIntervalMs = options.pollIntervalMs ?? 1000;
  const lockKey = `agora.outbox.${schema}`;
  let listener: pg.PoolClient | undefined;
  let running = false;
  let active = false;
  let wakeUp: (() => void) | undefined;
  let woken = false; // a NOTIFY came during a round: go again without waiting
  let loop: Promise<void> | undefined;

  const toMessage = (r: Row): TransportMessage => ({ id: r.id, ...(r.key === null ? {} : { key: r.key }), headers: r.headers, body: r.body });

  /** Consecutive rows of one topic go in one publish call, in order. */
  async function publishRuns(rows: readonly Row[], publish: (topic: string, batch: TransportMessage[]) => Promise<void>): Promise<void> {
    let start = 0;
    while (start < rows.length) {
      let end = start;
      while (end + 1 < rows.length && rows[end + 1]!.topic === rows[start]!.topic) end++;
      await publish(rows[start]!.topic, rows.slice(start, end + 1).map(toMessage));
      start = end + 1;
    }
  }

  // `o.seq`, qualified: a bare `seq` in ORDER BY names the output column, the text, and
  // '10' sorts before '9'.
  const select = `SELECT o.seq::text AS seq, o.id, o.topic, o.key, o.headers, o.body FROM ${schema}.outbox o ORDER BY o.seq LIMIT $1`;
  const remove = `DELETE FROM ${schema}.outbox WHERE seq = ANY($1::bigint[])`;

  async function relayOnce(): Promise<number> {
    let count: number;
    const within = options.publishWithin;
    if (within !== undefined) {
      // FOR UPDATE: a concurrent flush() waits rather than publishing the same rows.
      count = await withTransaction(pool, async (tx) => {
        const { rows } = await tx.query<Row>(`${select} FOR UPDATE`, [batchSize]);
        if (rows.length === 0) return 0;
        await publishRuns(rows, (topic, batch) => within(tx, topic, batch));
        await tx.query(remove, [rows.map((r) => r.seq)]);
        return rows.length;
      });
    } else {
      const { rows } = await pool.query<Row>(select, [batchSize]);
      if (rows.length === 0) return 0;
      await publishRuns(rows, (topic, batch) => transport.publish(topic, batch));
      await pool.query(remove, [rows.map((r) => r.seq)]);
      count = rows.length;
    }
    if (count > 0) options.onPublished?.(count);
    return count;
  }

  function pause(): Promise<void> {
    if (woken || !running) {
      woken = false;
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, pollIntervalMs);
      function done() {
        clearTimeout(timer);
        wakeUp = undefined;
        woken = false;
        resolve();
      }
      wakeUp = done;
    });
  }

  /** Returns a client to the pool without our listeners (destroyed when `err` is given). */
  const releasers = new Map<pg.PoolClient, (err?: Error | boolean) => void>();
  function release(client: pg.PoolClient, err?: Error | boolean): void {
    const releaser = releasers.get(client);
    releasers.delete(client);
    releaser?.(err);
  }

  /** Takes the lock if free; on success the listener holds it and LISTENs. */
  async function tryLead(): Promise<boolean> {
    const client = await pool.connect();
    let lost = false;
    // A checked-out client has no error listener: without this one, its connection dying
    // would crash the process. The lock dies with the connection.
    const onError = (err: Error) => {
      lost = true;
      if (listener !== client) return;
      options.logger?.warn({ err, schema }, 'outbox relay lost its connection; standing by');
      listener = undefined;
      active = false;
      release(client, err);
      wakeUp?.();
    };
    const onNotification = () => {
      woken = true;
      wakeUp?.();
    };
    client.on('error', onError);
    client.on('notification', onNotification);
    releasers.set(client, (err) => {
      client.off('error', onError);
      client.off('notification', onNotification);
      client.release(err);
    });
    try {
      const { rows } = await client.query<{ locked: boolean }>('SELECT pg_try_advisory_lock(hashtext($1)) AS locked', [lockKey]);
      if (rows[0]?.locked !== true || lost) {
        release(client, lost);
        return false;
      }
      await client.query(`LISTEN "${outboxChannel(schema)}"`);
      listener = client;
      active = true;
      return true;
    } catch (err) {
      release(client, err instanceof Error ? err : true);
      throw err;
    }
  }


  async function releaseLead(): Promise<void> {
    const client = listener;
    if (client === undefined) return;
    listener = undefined;
    active = false;
    try {
      await client.query(`UNLISTEN *`);
      await client.query('SELECT pg_advisory_unlock(hashtext($1))', [lockKey]);
      release(client);
    } catch (err) {
      release(client, err instanceof Error ? err : true); // the session and its lock end with it
    }
  }

  async function run(): Promise<void> {
    while (running) {
      if (!active) {
        try {
          if (!(await tryLead())) {
            await pause();
            continue;
          }
        } catch (err) {
          options.logger?.warn({ err, schema }, 'outbox relay could not try for the lock; retrying');
          await pause();
          continue;
        }
      }
      let published = 0;
      try {
        published = await relayOnce();
      } catch (err) {
        options.logger?.warn({ err, schema }, 'outbox relay round failed; retrying');
      }
      if (published === batchSize) continue; // more waiting
      await pause();
    }
    await releaseLead();
  }

  return {
    /**
     * Creates the outbox table if missing and starts relaying, or standing by while another
     * relay of the schema is active. Resolves at once either way.
     */
    async start(): Promise<void> {
      if (running) return;
      await pool.query(outboxDdl(schema));
      running = true;
      loop = run();
    },
    /** Finishes the round in progress, then releases the lock and the connection. */
    async stop(): Promise<void> {
      running = false;
      wakeUp?.();
      await loop;
      loop = undefined;
    },
    /** Whether this relay holds the lock and relays now (the others stand by). */
    get active(): boolean {
      return active;
    },
    /** Relays what is there now, once, lock or not (tests, and a final flush). */
    flush: relayOnce,
  };
}

export type OutboxRelay = ReturnType<typeof createOutboxRelay>;
