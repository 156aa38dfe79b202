import type pg from 'pg';
import { assertSchemaName, createPool, loadMigrations, migrate, noopLogger, withTransaction, type Queryable } from '@agora/db';
import { BusError, BusErrorCodes, isBusError } from '../../errors.js';
import type { Consumer, DeliveryHandler, GroupStats, SubscriptionSpec, TopicSpec, Transport, TransportMessage } from '../../transport.js';
import { systemBusClock } from '../../clock.js';
import { PostgresConsumer } from './consumer.js';
import { createPostgresDeadLetterStore } from './dead-letters.js';
import { Notifier } from './notifier.js';
import {
  channelOf,
  DEFAULT_GRACE_MS,
  DEFAULT_POLL_INTERVAL_MS,
  DEFAULT_SCHEMA,
  invalidOption,
  unknownTopic,
  type PostgresTransportOptions,
} from './options.js';
import { publishWithin } from './publish.js';
import { checkSubscription, checkTopicSpec } from '../shared/validate.js';
import { waitForRoom as waitForRoomOf, type RoomWatch } from '../shared/wait-for-room.js';

/** The PostgreSQL transport: the {@link Transport} contract plus publishing inside a caller's transaction. */
export interface PostgresTransport extends Transport {
  readonly kind: 'postgres';
  readonly schema: string;
  /**
   * Publishes inside the caller's open transaction (see the standalone `publishWithin`); waits
   * for the transport's migration first. A full topic throws `queue_full` even with onFull 'wait'.
   */
  publishWithin(client: Queryable, topic: string, messages: readonly TransportMessage[]): Promise<void>;
}

interface TopicRow {
  partitions: number;
  max_unacked: number | null;
  on_full: 'wait' | 'reject';
}

/**
 * Creates the PostgreSQL transport: durable topics, groups and dead letters in their own
 * schema (migrated on first use, safely from many processes at once). Fan-out on write: a
 * publish inserts the messages and one delivery row per declared group in one transaction,
 * then NOTIFYs; consumers LISTEN (one connection per transport) and poll as a safety net.
 * A message is deleted once every group has settled it (interest retention); a topic with no
 * group keeps its messages for the first group that starts from 'earliest'.
 *
 * @example
 * ```ts
 * const transport = createPostgresTransport({ url: process.env.DATABASE_URL, schema: 'bus' });
 * await transport.declareTopic({ name: 'posts', partitions: 8 });
 * await transport.declareGroup('posts', 'search-indexer');
 * await transport.publish('posts', [{ id: '1', key: 'post-1', headers: {}, body: '{"id":1}' }]);
 * const consumer = await transport.consume(
 *   { topic: 'posts', group: 'search-indexer', maxInFlight: 8, visibilityTimeoutMs: 30_000,
 *     redelivery: { maxAttempts: 5, backoffMs: (n) => 1_000 * 2 ** (n - 1) } },
 *   async (delivery) => index(JSON.parse(delivery.message.body)),
 * );
 * await transport.close();
 * ```
 */
export function createPostgresTransport(options: PostgresTransportOptions): PostgresTransport {
  const schema = options.schema ?? DEFAULT_SCHEMA;
  assertSchemaName(schema);
  const logger = options.logger ?? noopLogger;
  const clock = options.clock ?? systemBusClock;
  const pollIntervalMs = options.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS;
  if (!(pollIntervalMs > 0)) throw invalidOption(`pollIntervalMs must be positive, got ${pollIntervalMs}`, { pollIntervalMs });
  const closeGraceMs = options.closeGraceMs ?? DEFAULT_GRACE_MS;

  let pool: pg.Pool;
  const ownsPool = options.pool === undefined;
  if (options.pool !== undefined) pool = options.pool;
  else if (options.url !== undefined) pool = createPool({ url: options.url, schema, logger, applicationName: 'agora-bus' });
  else throw invalidOption('createPostgresTransport needs a pool or a url', {});

  const channel = channelOf(schema);
  const notifier = new Notifier(pool, channel, clock, logger, pollIntervalMs);
  const consumers = new Set<PostgresConsumer>();
  const topicRows = new Map<string, TopicRow>(); // a topic's settings never change once declared
  let migrated: Promise<void> | undefined;
  let closed: Promise<void> | undefined;

  function ready(): Promise<void> {
    if (closed !== undefined) {
      return Promise.reject(new BusError(BusErrorCodes.TRANSPORT_CLOSED, 'the postgres transport is closed', { schema }));
    }
    migrated ??= (async () => {
      const migrations = await loadMigrations(new URL('./migrations/', import.meta.url));
      await migrate(pool, { schema, migrations, logger });
    })();
    // A failed migration is not cached: the next call tries again (the database may be back).
    migrated.catch(() => {
      migrated = undefined;
    });
    return migrated;
  }

  async function topicRow(topic: string): Promise<TopicRow> {
    const cached = topicRows.get(topic);
    if (cached !== undefined) return cached;
    const { rows } = await pool.query<TopicRow>(`select partitions, max_unacked, on_full from ${schema}.topics where name = $1`, [topic]);
    const row = rows[0];
    if (row === undefined) throw unknownTopic(topic);
    topicRows.set(topic, row);
    return row;
  }

  async function declareGroup(topic: string, group: string, groupOptions: { startFrom?: 'earliest' | 'latest' } = {}): Promise<void> {
    await ready();
    await withTransaction(pool, async (tx) => {
      // FOR UPDATE waits for publishes in flight (they hold FOR SHARE) and holds new ones back,
      // so every message is either back-filled here or fanned out to the group by its publish.
      const topicLock = await tx.query(`select 1 from ${schema}.topics where name = $1 for update`, [topic]);
      if (topicLock.rowCount === 0) throw unknownTopic(topic);
      const inserted = await tx.query(
        `insert into ${schema}.groups (topic, name) values ($1, $2) on conflict (topic, name) do nothing`,
        [topic, group],
      );
      if (inserted.rowCount === 0 || groupOptions.startFrom === 'latest') return;
      await tx.query(
        `with d as (
           insert into ${schema}.deliveries (topic, grp, partition, seq)
           select topic, $2, partition, seq from ${schema}.messages where topic = $1 order by seq
           returning 1
         )
         select (select count(*) from d) as backfilled, pg_notify($3, 'p:' || $1::text)`,
        [topic, group, channel],
      );
    });
  }

  const roomWatch: RoomWatch = { clock, pollIntervalMs, subscribe: (topic, listener) => notifier.subscribe(topic, listener) };
  const waitForRoom = (topic: string, signal: AbortSignal | undefined) => waitForRoomOf(roomWatch, topic, signal);

  async function publishChunks(topic: string, messages: readonly TransportMessage[], size: number, signal: AbortSignal | undefined): Promise<void> {
    for (let from = 0; from < messages.length; ) {
      signal?.throwIfAborted();
      const chunk = messages.slice(from, from + size);
      try {
        await withTransaction(pool, (tx) => publishWithin(tx, topic, chunk, { schema }));
        from += chunk.length;
      } catch (err) {
        if (!isBusError(err, BusErrorCodes.QUEUE_FULL)) throw err;
        await waitForRoom(topic, signal);
        if (closed !== undefined) throw new BusError(BusErrorCodes.TRANSPORT_CLOSED, 'the postgres transport closed while publish waited for room', { topic });
      }
    }
  }

  const transport: PostgresTransport = {
    kind: 'postgres',
    schema,

    async declareTopic(spec: TopicSpec) {
      const { partitions, maxMessageBytes, onFull } = checkTopicSpec(spec);
      await ready();
      await pool.query(
        `insert into ${schema}.topics (name, partitions, max_message_bytes, max_unacked, on_full)
         values ($1, $2, $3, $4, $5) on conflict (name) do nothing`,
        [spec.name, partitions, maxMessageBytes, spec.maxUnacked ?? null, onFull],
      );
    },

    declareGroup,

    async publish(topic, messages, publishOptions = {}) {
      await ready();
      const { signal } = publishOptions;
      for (;;) {
        signal?.throwIfAborted();
        try {
          await withTransaction(pool, (tx) => publishWithin(tx, topic, messages, { schema }));
          return;
        } catch (err) {
          if (!isBusError(err, BusErrorCodes.QUEUE_FULL) || err.details.onFull !== 'wait') throw err;
          const maxUnacked = Number(err.details.maxUnacked);
          if (messages.length > maxUnacked) {
            // A batch bigger than the bound could never fit whole: like the memory transport,
            // append it in order, a bound's worth at a time (what went in stays if aborted).
            await publishChunks(topic, messages, maxUnacked, signal);
            return;
          }
        }
        await waitForRoom(topic, signal);
        if (closed !== undefined) throw new BusError(BusErrorCodes.TRANSPORT_CLOSED, 'the postgres transport closed while publish waited for room', { topic });
      }
    },

    async publishWithin(client, topic, messages) {
      await ready();
      await publishWithin(client, topic, messages, { schema });
    },

    async consume(subscription: SubscriptionSpec, handler: DeliveryHandler): Promise<Consumer> {
      checkSubscription(subscription);
      await declareGroup(subscription.topic, subscription.group, subscription.startFrom === undefined ? {} : { startFrom: subscription.startFrom });
      const topic = await topicRow(subscription.topic);
      const consumer = new PostgresConsumer(subscription, handler, {
        pool,
        schema,
        partitions: topic.partitions,
        notifySettled: topic.max_unacked !== null && topic.on_full === 'wait',
        clock,
        logger,
        pollIntervalMs,
        listen: (listener) => notifier.subscribe(subscription.topic, listener),
        onStopped: (stopped) => consumers.delete(stopped),
      });
      consumers.add(consumer);
      await consumer.start();
      return consumer;
    },

    async stats(topic, group): Promise<GroupStats> {
      await ready();
      const { rows } = await pool.query<{ known: boolean; pending: number; in_flight: number; dead: number }>(
        `select exists (select 1 from ${schema}.topics where name = $1) as known,
                (select count(*)::int from ${schema}.deliveries where topic = $1 and grp = $2) as pending,
                (select count(*)::int from ${schema}.deliveries
                  where topic = $1 and grp = $2 and state = 'inflight' and visible_at > now()) as in_flight,
                (select count(*)::int from ${schema}.dead_letters where topic = $1 and grp = $2) as dead`,
        [topic, group],
      );
      const row = rows[0];
      if (row === undefined || !row.known) throw unknownTopic(topic);
      return { topic, group, pending: row.pending, inFlight: row.in_flight, deadLetters: row.dead };
    },

    deadLetters: createPostgresDeadLetterStore(pool, schema, () => ready()),

    close() {
      closed ??= (async () => {
        await Promise.allSettled([...consumers].map((consumer) => consumer.stop({ graceMs: closeGraceMs })));
        await notifier.close();
        if (ownsPool) await pool.end();
      })();
      return closed;
    },
  };
  return transport;
}
