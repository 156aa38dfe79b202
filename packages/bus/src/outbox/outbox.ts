import { assertSchemaName, type Queryable } from '@agora/db';
import type { TransportMessage } from '../transport.js';

/**
 * The outbox table of one service, in its own schema. The state change and its outgoing
 * messages are written in one transaction; a relay publishes them afterwards. So a message
 * is sent if and only if its state change committed.
 */
export function outboxDdl(schema: string): string {
  assertSchemaName(schema);
  return `
    CREATE TABLE IF NOT EXISTS ${schema}.outbox (
      seq        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, -- publish order
      id         text        NOT NULL UNIQUE,                      -- the message id (envelope id)
      topic      text        NOT NULL,
      key        text,
      headers    jsonb       NOT NULL DEFAULT '{}',
      body       text        NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now()
    )`;
}

/** The NOTIFY channel a relay listens on for a schema's outbox. */
export const outboxChannel = (schema: string) => `${schema}_outbox`;

/**
 * Writes messages to the outbox inside the caller's transaction, and wakes the relay when
 * it commits (NOTIFY is delivered at commit, and not at all on rollback).
 * @example
 * await withTransaction(pool, async (tx) => {
 *   await tx.query('INSERT INTO posts ...');
 *   await enqueue(tx, 'social', 'social.posts', [bus.prepare(PostCreated, data)]);
 * });
 */
export async function enqueue(tx: Queryable, schema: string, topic: string, messages: readonly TransportMessage[]): Promise<void> {
  assertSchemaName(schema);
  if (messages.length === 0) return;
  await tx.query(
    `INSERT INTO ${schema}.outbox (id, topic, key, headers, body)
     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[], $5::text[])`,
    [
      messages.map((m) => m.id),
      messages.map(() => topic),
      messages.map((m) => m.key ?? null),
      messages.map((m) => JSON.stringify(m.headers)),
      messages.map((m) => m.body),
    ],
  );
  await tx.query('SELECT pg_notify($1, $2)', [outboxChannel(schema), topic]);
}
