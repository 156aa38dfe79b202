import type pg from 'pg';
import { isTransactionConflict } from './errors.js';

/**
 * Anything that runs a query: a pool, a pooled client or a client inside a transaction.
 * Repositories take a `Queryable` so the same code runs alone or inside {@link withTransaction}.
 *
 * @example
 * ```ts
 * export async function insertPost(db: Queryable, post: NewPost): Promise<void> {
 *   await db.query('insert into posts (id, body) values ($1, $2)', [post.id, post.body]);
 * }
 * ```
 */
export type Queryable = Pick<pg.PoolClient, 'query'>;

/** Transaction isolation levels, as PostgreSQL spells them. */
export type IsolationLevel = 'read committed' | 'repeatable read' | 'serializable';

/** Details passed to {@link TransactionOptions.onRetry}. */
export interface TransactionRetry {
  /** 1 for the first retry. */
  attempt: number;
  /** The serialization failure or deadlock that caused it. */
  error: unknown;
  delayMs: number;
}

/** Options of {@link withTransaction}. */
export interface TransactionOptions {
  /** Default `'read committed'`. */
  isolation?: IsolationLevel;
  /**
   * How many times to run `fn` again after a serialization failure (40001) or deadlock (40P01).
   * Default 3 for `'serializable'` and `'repeatable read'`, where such failures are expected
   * under contention; 0 otherwise.
   */
  retries?: number;
  readOnly?: boolean;
  /** Called before each retry, e.g. to count conflicts. */
  onRetry?: (retry: TransactionRetry) => void;
}

// Short, jittered, growing waits: the competing transaction usually commits within a few ms,
// and jitter keeps two losers from colliding again in lockstep.
const BASE_DELAY_MS = 5;
const MAX_DELAY_MS = 200;

/**
 * Runs `fn` inside `BEGIN ... COMMIT` on one pooled connection; rolls back if `fn` or the commit
 * throws; runs the whole of `fn` again on serialization failures and deadlocks, up to `retries`
 * times. The connection always goes back to the pool (and is discarded if the rollback itself
 * failed, since its state is then unknown).
 *
 * `fn` may run more than once, so it must not have side effects outside the transaction (send
 * messages through an outbox table instead).
 *
 * @example
 * ```ts
 * const post = await withTransaction(pool, async (tx) => {
 *   await tx.query('insert into posts (id, author_id, body) values ($1, $2, $3)', [id, authorId, body]);
 *   await tx.query('update users set post_count = post_count + 1 where id = $1', [authorId]);
 *   return { id };
 * }, { isolation: 'serializable' });
 * ```
 */
export async function withTransaction<T>(
  pool: pg.Pool,
  fn: (client: pg.PoolClient) => Promise<T>,
  options: TransactionOptions = {},
): Promise<T> {
  const isolation = options.isolation ?? 'read committed';
  const retries = options.retries ?? (isolation === 'read committed' ? 0 : 3);
  const begin = `begin isolation level ${isolation}${options.readOnly ? ' read only' : ''}`;

  for (let attempt = 0; ; attempt++) {
    try {
      return await runOnce(pool, begin, fn);
    } catch (err) {
      if (attempt >= retries || !isTransactionConflict(err)) throw err;
      const delayMs = backoff(attempt);
      options.onRetry?.({ attempt: attempt + 1, error: err, delayMs });
      await new Promise((resolve) => setTimeout(resolve, delayMs));
    }
  }
}

async function runOnce<T>(pool: pg.Pool, begin: string, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query(begin);
    const result = await fn(client);
    await client.query('commit');
    return result;
  } catch (err) {
    try {
      await client.query('rollback');
    } catch (rollbackError) {
      broken = rollbackError instanceof Error ? rollbackError : new Error(String(rollbackError));
    }
    throw err;
  } finally {
    client.release(broken);
  }
}

function backoff(attempt: number): number {
  const ceiling = Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** attempt);
  return Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
}
