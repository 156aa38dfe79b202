import { DbError } from './errors.js';

// Schema and database names are interpolated into SQL (search_path, CREATE SCHEMA, CREATE
// DATABASE) where bind parameters are not allowed, so only plain lower-case identifiers pass.
const IDENTIFIER = /^[a-z_][a-z0-9_]*$/;
// PostgreSQL truncates identifiers past NAMEDATALEN - 1 bytes, which would silently alias names.
const MAX_IDENTIFIER_LENGTH = 63;

function isIdentifier(name: string): boolean {
  return IDENTIFIER.test(name) && name.length <= MAX_IDENTIFIER_LENGTH;
}

/**
 * Throws `DB_INVALID_SCHEMA_NAME` unless `schema` is a safe lower-case identifier.
 *
 * @example
 * ```ts
 * assertSchemaName('posts'); // ok
 * assertSchemaName('posts; drop table users'); // throws DbError DB_INVALID_SCHEMA_NAME
 * ```
 */
export function assertSchemaName(schema: string): void {
  if (!isIdentifier(schema)) {
    throw new DbError('DB_INVALID_SCHEMA_NAME', `invalid schema name "${schema}": expected /^[a-z_][a-z0-9_]*$/, at most 63 characters`, {
      details: { schema },
    });
  }
}

/**
 * Throws `DB_INVALID_DATABASE_NAME` unless `name` is a safe lower-case identifier.
 *
 * @example
 * ```ts
 * assertDatabaseName('agora'); // ok
 * ```
 */
export function assertDatabaseName(name: string): void {
  if (!isIdentifier(name)) {
    throw new DbError('DB_INVALID_DATABASE_NAME', `invalid database name "${name}": expected /^[a-z_][a-z0-9_]*$/, at most 63 characters`, {
      details: { name },
    });
  }
}
