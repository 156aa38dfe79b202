import type pg from 'pg';
import { DbError } from './errors.js';
import { assertSchemaName } from './identifiers.js';
import { noopLogger, type DbLogger } from './logger.js';
import { assertMigrationSequence, type Migration } from './migrations-load.js';

/** Options of {@link migrate}. */
export interface MigrateOptions {
  /** The schema to migrate; created if missing. Its `schema_migrations` table records progress. */
  schema: string;
  /** Usually from {@link loadMigrations}. */
  migrations: readonly Migration[];
  logger?: DbLogger;
}

interface AppliedRow {
  version: number;
  name: string;
  checksum: string;
}

/**
 * Brings `schema` up to date: applies, in order, every migration not yet recorded in
 * `<schema>.schema_migrations`, each in its own transaction with `search_path` set to the
 * schema, so migration files use unqualified names.
 *
 * Safe to call from several processes at once (every replica migrates at startup): each
 * transaction first takes `pg_advisory_xact_lock` keyed on the schema, then re-reads what is
 * applied, so each migration runs exactly once and the others wait, then find nothing to do.
 *
 * Before applying anything it checks what is already there: an applied migration whose file
 * changed fails with `DB_MIGRATION_CHECKSUM_MISMATCH`; an applied version beyond the newest file
 * fails with `DB_MIGRATION_NEWER_SCHEMA` (this code is older than the database). A failing
 * migration is rolled back and rethrown as `DB_MIGRATION_FAILED` with the pg error as `cause`;
 * the migrations before it stay applied. Statements that cannot run in a transaction (`CREATE
 * INDEX CONCURRENTLY`) are not supported.
 *
 * @example
 * ```ts
 * const migrations = await loadMigrations(new URL('../migrations/', import.meta.url));
 * const { applied } = await migrate(pool, { schema: 'posts', migrations, logger });
 * logger.info({ applied }, 'schema up to date');
 * ```
 */
export async function migrate(pool: pg.Pool, options: MigrateOptions): Promise<{ applied: string[] }> {
  const { schema } = options;
  const logger = options.logger ?? noopLogger;
  assertSchemaName(schema);
  const migrations = [...options.migrations].sort((a, b) => a.version - b.version);
  assertMigrationSequence(migrations);

  const applied: string[] = [];
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    for (;;) {
      await client.query('begin');
      try {
        const done = await lockAndRead(client, schema);
        verifyApplied(schema, done, migrations);
        const next = migrations.find((migration) => !done.has(migration.version));
        if (next === undefined) {
          await client.query('commit');
          break;
        }
        await applyOne(client, schema, next);
        await client.query('commit');
        applied.push(`${String(next.version).padStart(4, '0')}_${next.name}`);
        logger.info({ schema, version: next.version, migration: next.name }, 'migration applied');
      } catch (err) {
        await client.query('rollback').catch((rollbackError: unknown) => {
          broken = rollbackError instanceof Error ? rollbackError : new Error(String(rollbackError));
        });
        throw err;
      }
    }
  } finally {
    client.release(broken);
  }
  return { applied };
}

async function lockAndRead(client: pg.PoolClient, schema: string): Promise<Map<number, AppliedRow>> {
  // Keyed on the schema so services migrating their own schemas don't wait for each other.
  // The lock comes first: CREATE SCHEMA/TABLE IF NOT EXISTS race with each other otherwise.
  await client.query(`select pg_advisory_xact_lock(hashtext('agora.migrate'), hashtext($1))`, [schema]);
  await client.query(`create schema if not exists ${schema}`);
  await client.query(
    `create table if not exists ${schema}.schema_migrations (
       version int primary key,
       name text not null,
       checksum text not null,
       applied_at timestamptz not null default now()
     )`,
  );
  const { rows } = await client.query<AppliedRow>(`select version, name, checksum from ${schema}.schema_migrations`);
  return new Map(rows.map((row) => [row.version, row]));
}

function verifyApplied(schema: string, done: Map<number, AppliedRow>, migrations: readonly Migration[]): void {
  const known = migrations.length;
  for (const row of done.values()) {
    if (row.version > known) {
      throw new DbError(
        'DB_MIGRATION_NEWER_SCHEMA',
        `schema "${schema}" has migration ${row.version} (${row.name}) but this code knows only up to ${known}: deploy newer code`,
        { details: { schema, version: row.version, name: row.name, known } },
      );
    }
    const file = migrations[row.version - 1];
    if (file !== undefined && file.checksum !== row.checksum) {
      throw new DbError(
        'DB_MIGRATION_CHECKSUM_MISMATCH',
        `migration ${row.version} (${file.name}) of schema "${schema}" was edited after it was applied: revert the edit and add a new migration`,
        { details: { schema, version: row.version, name: file.name, applied: row.checksum, file: file.checksum } },
      );
    }
  }
}

async function applyOne(client: pg.PoolClient, schema: string, migration: Migration): Promise<void> {
  await client.query(`set local search_path to ${schema}`);
  try {
    // No parameters: the simple query protocol, so a file may hold many statements.
    await client.query(migration.sql);
  } catch (err) {
    throw new DbError(
      'DB_MIGRATION_FAILED',
      `migration ${migration.version} (${migration.name}) of schema "${schema}" failed: ${err instanceof Error ? err.message : String(err)}`,
      { details: { schema, version: migration.version, name: migration.name }, cause: err },
    );
  }
  await client.query(
    `insert into ${schema}.schema_migrations (version, name, checksum) values ($1, $2, $3)`,
    [migration.version, migration.name, migration.checksum],
  );
}
