import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { assertDatabaseName } from './identifiers.js';

/** A throwaway database made by {@link createTestDatabase}. */
export interface TestDatabase {
  /** Connection URL of the new database. */
  url: string;
  name: string;
  /** Drops the database, disconnecting anyone still connected. */
  drop(): Promise<void>;
}

/**
 * Creates a database with a random unique name on the server of `baseUrl`, so test files can
 * share one server without seeing each other's tables. `baseUrl`'s own database is used only to
 * run `CREATE DATABASE` and `DROP DATABASE`.
 *
 * @example
 * ```ts
 * import { inject } from 'vitest';
 * const db = await createTestDatabase(inject('databaseUrl'));
 * const pool = createPool({ url: db.url, schema: 'posts' });
 * afterAll(async () => { await pool.end(); await db.drop(); });
 * ```
 */
export async function createTestDatabase(baseUrl: string, prefix = 't'): Promise<TestDatabase> {
  const name = `${prefix}_${Date.now().toString(36)}_${randomBytes(6).toString('hex')}`;
  assertDatabaseName(name);
  await runAdmin(baseUrl, `create database ${pg.escapeIdentifier(name)}`);
  const url = new URL(baseUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    name,
    drop: () => runAdmin(baseUrl, `drop database if exists ${pg.escapeIdentifier(name)} with (force)`),
  };
}

async function runAdmin(baseUrl: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: baseUrl });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}
