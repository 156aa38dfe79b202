import pg from 'pg';
import { DbError } from './errors.js';
import { assertSchemaName } from './identifiers.js';
import { noopLogger, type DbLogger } from './logger.js';

/** Options of {@link createPool}. */
export interface CreatePoolOptions {
  /** A `postgres://` connection URL. */
  url: string;
  /** Every connection's `search_path` is set to exactly this schema. */
  schema?: string;
  /** Most connections open at once. Default 10. */
  max?: number;
  /** Connections kept open even when idle. Default 0. */
  min?: number;
  /** Close a connection idle this long. Default 10 000. */
  idleTimeoutMs?: number;
  /** Fail `connect()` when no connection is available this long. Default 5 000. */
  connectionTimeoutMs?: number;
  /** Server-side `statement_timeout` for every statement. Default none. */
  statementTimeoutMs?: number;
  /** Shown in `pg_stat_activity.application_name`. Default `'agora'`. */
  applicationName?: string;
  logger?: DbLogger;
}

/**
 * Creates a `pg.Pool` whose connections all run with `search_path` set to `schema`, so a
 * service's unqualified table names resolve in its own schema only.
 *
 * The schema and timeout are sent as the `options` startup parameter rather than with a `SET`
 * after connecting: they hold from the first statement and survive `RESET ALL`/`DISCARD ALL`.
 * Errors of idle connections (the server restarted, a network blip) are logged instead of
 * crashing the process, which is what an unhandled pool `error` event would do.
 *
 * @example
 * ```ts
 * const pool = createPool({ url, schema: 'posts', applicationName: 'posts-service', logger });
 * const { rows } = await pool.query('select count(*) from posts'); // posts.posts
 * await pool.end();
 * ```
 */
export function createPool(options: CreatePoolOptions): pg.Pool {
  const { url, schema, max = 10, min = 0, idleTimeoutMs = 10_000, connectionTimeoutMs = 5_000 } = options;
  const logger = options.logger ?? noopLogger;
  if (schema !== undefined) assertSchemaName(schema);

  // pg lets an `options` query parameter in the URL override the `options` field wholesale, so
  // take it out of the URL and append ours after it (the last -c for a setting wins).
  const parsed = new URL(url);
  const startup = [parsed.searchParams.get('options') ?? ''];
  parsed.searchParams.delete('options');
  if (schema !== undefined) startup.push(`-c search_path=${schema}`);
  if (options.statementTimeoutMs !== undefined) {
    startup.push(`-c statement_timeout=${Math.max(0, Math.floor(options.statementTimeoutMs))}`);
  }
  const startupOptions = startup.filter((part) => part !== '').join(' ');

  const pool = new pg.Pool({
    connectionString: parsed.toString(),
    ...(startupOptions === '' ? {} : { options: startupOptions }),
    max,
    min,
    idleTimeoutMillis: idleTimeoutMs,
    connectionTimeoutMillis: connectionTimeoutMs,
    application_name: options.applicationName ?? 'agora',
  });
  pool.on('error', (err) => {
    logger.error({ err, schema }, 'idle PostgreSQL connection failed; it was removed from the pool');
  });
  return pool;
}

/** A snapshot of a pool's connection counts, for gauges. */
export interface PoolStats {
  /** Connections open, idle or checked out. */
  total: number;
  /** Open connections waiting in the pool. */
  idle: number;
  /** Callers waiting for a connection. */
  waiting: number;
  /** The pool's configured maximum. */
  max: number;
}

/**
 * Reads a pool's connection counts; the observability package turns them into gauges.
 *
 * @example
 * ```ts
 * gauge.collect = () => gauge.set(poolStats(pool).waiting);
 * ```
 */
export function poolStats(pool: pg.Pool): PoolStats {
  return {
    total: pool.totalCount,
    idle: pool.idleCount,
    waiting: pool.waitingCount,
    max: pool.options.max ?? 10,
  };
}

/** Options of {@link pingDatabase}. */
export interface PingOptions {
  /** Give up after this long. Default 2 000. */
  timeoutMs?: number;
}

/**
 * Readiness check: runs `select 1` on a pooled connection and resolves with the round trip
 * time. Rejects with `DB_PING_TIMEOUT` when the pool or server does not answer within
 * `timeoutMs` (a readiness probe must answer even when every connection is stuck), with
 * `DB_ABORTED` if `signal` fires, or with the pg error.
 *
 * @example
 * ```ts
 * app.get('/readyz', async (_req, reply) => {
 *   await pingDatabase(pool, AbortSignal.timeout(1_000));
 *   return reply.send({ ok: true });
 * });
 * ```
 */
export async function pingDatabase(
  pool: pg.Pool,
  signal?: AbortSignal,
  options: PingOptions = {},
): Promise<{ latencyMs: number }> {
  const timeoutMs = options.timeoutMs ?? 2_000;
  if (signal?.aborted) throw abortedError(signal);
  const started = performance.now();

  let settled = false;
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  const cutoff = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new DbError('DB_PING_TIMEOUT', `database ping timed out after ${timeoutMs} ms`, { details: { timeoutMs } }));
    }, timeoutMs);
    onAbort = () => reject(abortedError(signal));
    signal?.addEventListener('abort', onAbort, { once: true });
  });

  const attempt = (async () => {
    const client = await pool.connect();
    if (settled) {
      // The caller has given up; the connection may be fine, but don't keep it checked out.
      client.release();
      return;
    }
    try {
      await client.query('select 1');
      client.release();
    } catch (err) {
      client.release(err instanceof Error ? err : true);
      throw err;
    }
  })();
  // The loser of the race below must not surface as an unhandled rejection.
  attempt.catch(() => undefined);

  try {
    await Promise.race([attempt, cutoff]);
    return { latencyMs: performance.now() - started };
  } finally {
    settled = true;
    clearTimeout(timer);
    if (onAbort) signal?.removeEventListener('abort', onAbort);
  }
}

function abortedError(signal: AbortSignal | undefined): DbError {
  return new DbError('DB_ABORTED', 'database ping aborted', { cause: signal?.reason });
}
