import { assertSchemaName, withTransaction } from '@agora/db';
import type pg from 'pg';

/**
 * Remembers which messages a group has processed, so that a redelivered message (the normal
 * case under at-least-once delivery) has its effect once.
 */
export interface DedupStore<Tx> {
  /**
   * Runs `effect` unless `messageId` was already processed by `group`; records it as
   * processed together with the effect (atomically, where the store allows).
   * Resolves to false for a duplicate (the effect did not run).
   */
  once(group: string, messageId: string, effect: (tx: Tx) => Promise<void>): Promise<boolean>;
}

/**
 * Dedup in PostgreSQL, in the same transaction as the handler's writes: the effect and the
 * "processed" mark commit together or not at all, so a crash at any point leaves either both
 * or neither. The table lives in the consumer's own schema.
 * @example
 * const dedup = postgresDedupStore(pool, 'feed');
 * handlers: { [PostCreated.type]: (env) => dedup.once('feed', env.id, (tx) => addToTimelines(tx, env.data)).then(() => undefined) }
 */
export function postgresDedupStore(pool: pg.Pool, schema: string): DedupStore<pg.PoolClient> & { ensureTable(): Promise<void> } {
  assertSchemaName(schema);
  let ready: Promise<void> | undefined;
  // A failed attempt (the database was down) is forgotten, so the next call tries again.
  // `CREATE TABLE IF NOT EXISTS` is not safe against itself: two processes creating the
  // table at once make one fail on the catalog's unique index. An advisory lock makes them
  // take turns; the second then finds the table.
  const ensureTable = () =>
    (ready ??= withTransaction(pool, async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`agora.dedup.${schema}`]);
      await tx.query(
        `CREATE TABLE IF NOT EXISTS ${schema}.processed_messages (
           group_name   text        NOT NULL,
           message_id   text        NOT NULL,
           processed_at timestamptz NOT NULL DEFAULT now(),
           PRIMARY KEY (group_name, message_id)
         )`,
      );
    }).then(
        () => undefined,
        (err: unknown) => {
          ready = undefined;
          throw err;
        },
      ));
  return {
    ensureTable,
    async once(group, messageId, effect) {
      await ensureTable();
      return withTransaction(pool, async (tx) => {
        // The insert takes the key: a concurrent duplicate waits here, then finds it taken.
        const mark = await tx.query(`INSERT INTO ${schema}.processed_messages (group_name, message_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`, [group, messageId]);
        if (mark.rowCount === 0) return false;
        await effect(tx);
        return true;
      });
    },
  };
}

/**
 * Dedup in memory, for tests and single-process runs (forgets on restart). Calls with one
 * id run one after another, so a duplicate arriving while the first is running waits for it,
 * and runs the effect only if the first failed.
 * @example
 * const dedup = memoryDedupStore();
 * await dedup.once('feed', env.id, async () => timelines.add(env.data)); // true
 * await dedup.once('feed', env.id, async () => timelines.add(env.data)); // false, not run
 */
export function memoryDedupStore(): DedupStore<undefined> {
  const seen = new Set<string>();
  // The tail of each id's queue. Set synchronously, before the first await: a check and set
  // split by an await would let every concurrent caller pass the check before any set it.
  const queues = new Map<string, Promise<unknown>>();
  return {
    async once(group, messageId, effect) {
      const key = `${group}\u0000${messageId}`;
      const turn = (queues.get(key) ?? Promise.resolve()).then(async () => {
        if (seen.has(key)) return false;
        await effect(undefined);
        seen.add(key);
        return true;
      });
      const tail = turn.catch(() => undefined);
      queues.set(key, tail);
      try {
        return await turn;
      } finally {
        if (queues.get(key) === tail) queues.delete(key);
      }
    },
  };
}
