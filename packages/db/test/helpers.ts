import { randomBytes } from 'node:crypto';
import { migrationChecksum, type DbLogger, type Migration } from '../src/index.js';

/** A schema name no other test uses. */
export function uniqueSchema(prefix = 's'): string {
  return `${prefix}_${randomBytes(5).toString('hex')}`;
}

/** An in-memory migration, as loadMigrations would read it from `NNNN_name.sql`. */
export function migration(version: number, name: string, sql: string): Migration {
  return { version, name, sql, checksum: migrationChecksum(sql) };
}

/** A logger that records what it is given, for asserting that something was logged. */
export function recordingLogger(): DbLogger & { entries: { level: string; args: unknown[] }[] } {
  const entries: { level: string; args: unknown[] }[] = [];
  const at = (level: string) => (...args: unknown[]) => {
    entries.push({ level, args });
  };
  return { entries, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}
