import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DbError } from './errors.js';

/** One forward-only migration: the SQL of `NNNN_name.sql`. */
export interface Migration {
  /** The number `NNNN`, starting at 1. */
  version: number;
  /** The `name` part of the file name. */
  name: string;
  sql: string;
  /** sha256 (hex) of the SQL with line endings normalised to `\n`. */
  checksum: string;
}

const FILE_NAME = /^(\d{4})_([a-z0-9_]+)\.sql$/;

/**
 * The checksum stored for a migration. Line endings are normalised first so a checkout that
 * converts them (git autocrlf) is not mistaken for an edited migration.
 *
 * @example
 * ```ts
 * const migration = { version: 1, name: 'init', sql, checksum: migrationChecksum(sql) };
 * ```
 */
export function migrationChecksum(sql: string): string {
  return createHash('sha256').update(sql.replace(/\r\n/g, '\n')).digest('hex');
}

/**
 * Reads every `NNNN_name.sql` file of `dir`, sorted by number. Other files (a README) are
 * ignored, but a `.sql` file with another name is an error (`DB_MIGRATION_INVALID_FILENAME`),
 * as it is most likely a migration that would silently never run. Versions must run 1, 2, 3...
 * (`DB_MIGRATION_DUPLICATE_VERSION`, `DB_MIGRATION_GAP`), which makes two branches that each add
 * a migration with the same number collide at merge time instead of in production.
 *
 * @example
 * ```ts
 * const migrations = await loadMigrations(new URL('../migrations/', import.meta.url));
 * await migrate(pool, { schema: 'posts', migrations });
 * ```
 */
export async function loadMigrations(dir: string | URL): Promise<Migration[]> {
  const path = typeof dir === 'string' ? dir : fileURLToPath(dir);
  const entries = await readdir(path, { withFileTypes: true });
  const migrations: Migration[] = [];
  for (const entry of entries) {
    if (!entry.isFile() || !entry.name.endsWith('.sql')) continue;
    const match = FILE_NAME.exec(entry.name);
    if (!match) {
      throw new DbError('DB_MIGRATION_INVALID_FILENAME', `migration file "${entry.name}" in ${path} is not named NNNN_name.sql`, {
        details: { file: entry.name, dir: path },
      });
    }
    const sql = await readFile(join(path, entry.name), 'utf8');
    migrations.push({ version: Number(match[1]), name: match[2] ?? '', sql, checksum: migrationChecksum(sql) });
  }
  migrations.sort((a, b) => a.version - b.version);
  assertMigrationSequence(migrations);
  return migrations;
}

/**
 * Throws unless the migrations, in order, are numbered 1, 2, 3... with no duplicate or gap.
 *
 * @example
 * ```ts
 * assertMigrationSequence([{ version: 1, ... }, { version: 3, ... }]); // throws DB_MIGRATION_GAP
 * ```
 */
export function assertMigrationSequence(migrations: readonly Migration[]): void {
  migrations.forEach((migration, index) => {
    const previous = migrations[index - 1];
    if (previous !== undefined && previous.version === migration.version) {
      throw new DbError(
        'DB_MIGRATION_DUPLICATE_VERSION',
        `migrations "${previous.name}" and "${migration.name}" share version ${migration.version}`,
        { details: { version: migration.version, names: [previous.name, migration.name] } },
      );
    }
    if (migration.version !== index + 1) {
      throw new DbError(
        'DB_MIGRATION_GAP',
        `migration "${migration.name}" has version ${migration.version}, expected ${index + 1}: versions must run 1, 2, 3... without gaps`,
        { details: { version: migration.version, expected: index + 1 } },
      );
    }
  });
}
