import { assertSchemaName, type Queryable } from '@agora/db';
import { BusError, BusErrorCodes } from '../../errors.js';
import { partitionOf } from '../../partition.js';
import type { TransportMessage } from '../../transport.js';
import { channelOf, DEFAULT_SCHEMA, unknownTopic } from './options.js';
import { messageBytes } from '../shared/message-size.js';

interface TopicRow {
  partitions: number;
  max_message_bytes: number;
  max_unacked: number | null;
  on_full: 'wait' | 'reject';
}

/** Size a message counts against `maxMessageBytes`: UTF-8 bytes of body, header names and values. */
export { messageBytes };

/** Options of {@link publishWithin}. */
export interface PublishWithinOptions {
  /** The transport's schema. Default `'bus'`. */
  readonly schema?: string;
}

/**
 * Publishes `messages` to `topic` inside the caller's open transaction: they become visible
 * to consumers when (and only if) that transaction commits, which is what an outbox or an
 * idempotent consumer writing its own state needs. The transport's schema must already be
 * migrated (any `createPostgresTransport` on the database did it, or call the transport's own
 * `publishWithin`, which waits for its migration).
 *
 * Takes a share lock on the topic row until the caller commits (a concurrent `declareGroup`
 * waits, so no message misses a new group), and for a topic with `maxUnacked` an exclusive
 * advisory lock per topic so two publishers cannot both squeeze into the last slot. A full
 * topic throws `queue_full` whatever `onFull` says: waiting would hold the caller's locks.
 *
 * @throws BusError `unknown_topic`, `message_too_large`, `queue_full`
 * @example
 * ```ts
 * await withTransaction(pool, async (tx) => {
 *   await tx.query('update posts set published = true where id = $1', [postId]);
 *   await publishWithin(tx, 'posts.published', [{ id: eventId, key: postId, headers: {}, body }]);
 * });
 * ```
 */
export async function publishWithin(
  client: Queryable,
  topic: string,
  messages: readonly TransportMessage[],
  options: PublishWithinOptions = {},
): Promise<void> {
  const schema = options.schema ?? DEFAULT_SCHEMA;
  assertSchemaName(schema);
  const { rows } = await client.query<TopicRow>(
    `select partitions, max_message_bytes, max_unacked, on_full,
            case when max_unacked is not null
                 then (select true from pg_advisory_xact_lock(hashtext('agora.bus.publish'), hashtext($2::text || '.' || name)))
            end as locked
       from ${schema}.topics where name = $1 for share`,
    [topic, schema],
  );
  const spec = rows[0];
  if (spec === undefined) throw unknownTopic(topic);
  if (messages.length === 0) return;

  for (const message of messages) {
    const bytes = messageBytes(message);
    if (bytes > spec.max_message_bytes) {
      throw new BusError(
        BusErrorCodes.MESSAGE_TOO_LARGE,
        `message ${message.id} is ${bytes} bytes, topic "${topic}" accepts at most ${spec.max_message_bytes}`,
        { topic, messageId: message.id, bytes, maxMessageBytes: spec.max_message_bytes },
      );
    }
  }

  if (spec.max_unacked !== null) {
    // Counting stops at the limit, so a full topic costs at most maxUnacked index entries.
    const held = await client.query<{ n: number }>(
      `select count(*)::int as n from (select 1 from ${schema}.messages where topic = $1 limit $2) held`,
      [topic, spec.max_unacked],
    );
    const n = held.rows[0]?.n ?? 0;
    if (n + messages.length > spec.max_unacked) {
      throw new BusError(
        BusErrorCodes.QUEUE_FULL,
        `topic "${topic}" holds ${n} unacknowledged messages; ${messages.length} more would pass maxUnacked ${spec.max_unacked}`,
        { topic, held: n, adding: messages.length, maxUnacked: spec.max_unacked, onFull: spec.on_full },
      );
    }
  }

  // ORDER BY ordinality makes the identity hand out seqs in publish order; the deliveries
  // (one per declared group) are written by the same statement, as is the NOTIFY, which
  // PostgreSQL sends only when the transaction commits.
  await client.query(
    `with m as (
       insert into ${schema}.messages (topic, partition, id, key, headers, body)
       select $1, x.partition, x.id, x.key, x.headers::jsonb, x.body
         from unnest($2::int[], $3::text[], $4::text[], $5::text[], $6::text[])
              with ordinality as x(partition, id, key, headers, body, ord)
        order by x.ord
       returning seq, partition
     ), d as (
       insert into ${schema}.deliveries (topic, grp, partition, seq)
       select $1, g.name, m.partition, m.seq from m cross join ${schema}.groups g where g.topic = $1
     )
     select pg_notify($7, 'p:' || $1::text)`,
    [
      topic,
      messages.map((message) => partitionOf(message.key, spec.partitions, message.id)),
      messages.map((message) => message.id),
      messages.map((message) => message.key ?? null),
      messages.map((message) => JSON.stringify(message.headers)),
      messages.map((message) => message.body),
      channelOf(schema),
    ],
  );
}
