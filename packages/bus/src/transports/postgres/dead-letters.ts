import type pg from 'pg';
import { withTransaction } from '@agora/db';
import type { DeadLetter, DeadLetterStore } from '../../transport.js';
import { channelOf } from './options.js';

interface DeadLetterRow {
  id: string;
  topic: string;
  grp: string;
  message_id: string;
  key: string | null;
  headers: Record<string, string>;
  body: string;
  attempts: number;
  errors: { at: string; attempt: number; error: string }[];
  dead_at: Date;
}

const COLUMNS = 'id, topic, grp, message_id, key, headers, body, attempts, errors, dead_at';
const DEFAULT_LIST_LIMIT = 100;

function toDeadLetter(row: DeadLetterRow): DeadLetter {
  return {
    id: row.id,
    topic: row.topic,
    group: row.grp,
    message: {
      id: row.message_id,
      ...(row.key === null ? {} : { key: row.key }),
      headers: row.headers,
      body: row.body,
    },
    attempts: row.attempts,
    errors: row.errors,
    deadAt: row.dead_at.toISOString(),
  };
}

/** Ids are bigint identities; anything else cannot name an entry (and must not reach a ::bigint cast). */
function isEntryId(id: string): boolean {
  return /^[1-9][0-9]{0,18}$/.test(id);
}

/**
 * The dead letter queue in `<schema>.dead_letters`: each entry a copy of the message (the
 * original row goes once every group settled it), with the group's errors, oldest first.
 *
 * `list` pages by id (keyset: pass the last id seen as `after`). `replay` appends the message
 * to the topic again as a new message row (a fresh seq, at the tail of its partition, with
 * the partition it had) with one delivery, for the dead letter's group only, attempts from 0;
 * it goes behind messages published since, which is the only order that keeps "one in flight
 * per partition" simple, and a replay is an operator's decision, not part of the stream.
 *
 * @example
 * ```ts
 * const store = createPostgresDeadLetterStore(pool, 'bus', ensureReady);
 * for (const entry of await store.list({ topic: 'posts', limit: 50 })) await store.replay(entry.id);
 * ```
 */
export function createPostgresDeadLetterStore(pool: pg.Pool, schema: string, ready: () => Promise<void>): DeadLetterStore {
  return {
    async list(filter = {}) {
      await ready();
      const limit = Math.max(1, Math.min(filter.limit ?? DEFAULT_LIST_LIMIT, 10_000));
      const after = filter.after !== undefined && isEntryId(filter.after) ? filter.after : null;
      const { rows } = await pool.query<DeadLetterRow>(
        `select ${COLUMNS} from ${schema}.dead_letters
          where ($1::text is null or topic = $1) and ($2::text is null or grp = $2) and ($3::bigint is null or id > $3)
          order by id
          limit $4`,
        [filter.topic ?? null, filter.group ?? null, after, limit],
      );
      return rows.map(toDeadLetter);
    },

    async get(id) {
      await ready();
      if (!isEntryId(id)) return undefined;
      const { rows } = await pool.query<DeadLetterRow>(`select ${COLUMNS} from ${schema}.dead_letters where id = $1`, [id]);
      const row = rows[0];
      return row === undefined ? undefined : toDeadLetter(row);
    },

    async replay(id) {
      await ready();
      if (!isEntryId(id)) return false;
      return withTransaction(pool, async (tx) => {
        const { rows } = await tx.query<{ topic: string }>(
          `with dl as (
             delete from ${schema}.dead_letters where id = $1
             returning topic, grp, partition, message_id, key, headers, body
           ), t as (
             select dl.* from dl join ${schema}.topics tp on tp.name = dl.topic
           ), m as (
             insert into ${schema}.messages (topic, partition, id, key, headers, body)
             select topic, partition, message_id, key, headers, body from t
             returning topic, seq, partition
           ), d as (
             insert into ${schema}.deliveries (topic, grp, partition, seq)
             select m.topic, t.grp, m.partition, m.seq from m, t
           )
           select m.topic, pg_notify($2, 'p:' || m.topic) from m`,
          [id, channelOf(schema)],
        );
        return rows.length > 0;
      });
    },

    async purge(filter) {
      await ready();
      if (filter.id !== undefined && !isEntryId(filter.id)) return 0;
      const { rowCount } = await pool.query(
        `delete from ${schema}.dead_letters
          where ($1::bigint is null or id = $1) and ($2::text is null or topic = $2) and ($3::text is null or grp = $3)`,
        [filter.id ?? null, filter.topic ?? null, filter.group ?? null],
      );
      return rowCount ?? 0;
    },
  };
}
