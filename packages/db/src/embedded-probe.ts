import { realpath } from 'node:fs/promises';
import pg from 'pg';
import type { DbLogger } from './logger.js';

/** The superuser role `initdb -U` creates in the embedded cluster. */
export const EMBEDDED_ROLE = 'agora';

const POLL_MS = 100;

/**
 * Runs one statement on the embedded server over a fresh connection (no pool: these run once,
 * during startup).
 */
export async function queryServer<R extends pg.QueryResultRow = pg.QueryResultRow>(
  port: number,
  database: string,
  sql: string,
  values?: unknown[],
): Promise<pg.QueryResult<R>> {
  // ssl: false so a PGSSLMODE in the environment does not break talking to our own server.
  const client = new pg.Client({ host: '127.0.0.1', port, user: EMBEDDED_ROLE, database, ssl: false, connectionTimeoutMillis: 2_000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return await client.query<R>(sql, values);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** What {@link waitUntilReady} watches. */
export interface ReadinessTarget {
  port: number;
  dataDir: string;
  /** Settles when the postgres process exits. */
  exited: Promise<void>;
  hasExited(): boolean;
  timeoutMs: number;
}

/**
 * Resolves once the server on `port` accepts connections and is ours. Readiness is proven by
 * connecting, not by reading the log, whose wording changes between versions; and by checking
 * `data_directory`, because another server that grabbed the port first would answer too.
 * Rejects if postgres exits or the timeout passes.
 */
export async function waitUntilReady(target: ReadinessTarget): Promise<void> {
  const { port, exited, hasExited } = target;
  const deadline = Date.now() + target.timeoutMs;
  // PostgreSQL reports the -D path made absolute, without resolving symlinks.
  const ourDirs = new Set([target.dataDir, await realpath(target.dataDir)]);
  let lastError: unknown;
  while (Date.now() < deadline) {
    if (hasExited()) throw new Error('postgres exited during startup', { cause: lastError });
    const attempt = queryServer<{ dir: string }>(port, 'postgres', "select current_setting('data_directory') as dir");
    // If postgres exits first, the losing attempt must not become an unhandled rejection.
    attempt.catch(() => undefined);
    try {
      const serving = await Promise.race([attempt, exited]);
      if (serving === undefined) continue;
      const dir = serving.rows[0]?.dir ?? '';
      if (ourDirs.has(dir)) return;
      throw new Error(`port ${port} is served by another PostgreSQL (${dir})`);
    } catch (err) {
      if (err instanceof Error && err.message.startsWith(`port ${port} is served by another`)) throw err;
      lastError = err;
    }
    await new Promise((done) => setTimeout(done, POLL_MS));
  }
  throw new Error(`postgres did not accept connections within ${target.timeoutMs} ms (last error: ${messageOf(lastError)})`);
}

/** Creates `database` on the server unless it exists. */
export async function ensureDatabase(port: number, database: string, logger: DbLogger): Promise<void> {
  const found = await queryServer(port, 'postgres', 'select 1 from pg_database where datname = $1', [database]);
  if (found.rowCount !== 0) return;
  try {
    await queryServer(port, 'postgres', `create database ${pg.escapeIdentifier(database)}`);
    logger.info({ database }, 'created database');
  } catch (err) {
    // 42P04 duplicate_database: created concurrently by someone else, which is just as good.
    if ((err as { code?: string }).code !== '42P04') throw err;
  }
}

export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
