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
  const ensureTable = () =>
    (ready ??= pool
      .query(
        `CREATE TABLE IF NOT EXISTS ${schema}.processed_messages (
           group_name   text        NOT NULL,
           message_id   text        NOT NULL,
           processed_at timestamptz NOT NULL DEFAULT now(),
           PRIMARY KEY (group_name, message_id)
         )`,
      )
      .then(() => undefined));
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

/** Dedup in memory, for tests and single-process runs (forgets on restart). */
export function memoryDedupStore(): DedupStore<undefined> {
  const seen = new Set<string>();
  const running = new Map<string, Promise<void>>();
  return {
    async once(group, messageId, effect) {
      const key = `${group}\u0000${messageId}`;
      await running.get(key)?.catch(() => undefined);
      if (seen.has(key)) return false;
      const run = effect(undefined);
      running.set(key, run);
      try {
        await run;
        seen.add(key);
        return true;
      } finally {
        running.delete(key);
      }
    },
  };
}
