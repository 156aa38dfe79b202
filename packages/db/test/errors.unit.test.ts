import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import {
  assertSchemaName,
  createPool,
  DbError,
  dbErrorCatalogue,
  isCheckViolation,
  isDbError,
  isForeignKeyViolation,
  isTransactionConflict,
  isUniqueViolation,
} from '../src/index.js';

describe('error catalogue', () => {
  it('documents every code in the README table, and no others', async () => {
    const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8');
    const documented = [...readme.matchAll(/^\| `(DB_[A-Z_]+)` \|/gm)].map((match) => match[1]);
    expect(documented.sort()).toEqual(Object.keys(dbErrorCatalogue).sort());
  });

  it('gives every error its code and the catalogue retryable flag', () => {
    const err = new DbError('DB_PING_TIMEOUT', 'slow', { details: { timeoutMs: 5 } });
    expect(err.code).toBe('DB_PING_TIMEOUT');
    expect(err.retryable).toBe(true);
    expect(err.details).toEqual({ timeoutMs: 5 });
  });
});

describe('isDbError', () => {
  it('recognises db errors by flag and optional code', () => {
    const err = new DbError('DB_MIGRATION_GAP', 'gap');
    expect(isDbError(err)).toBe(true);
    expect(isDbError(err, 'DB_MIGRATION_GAP')).toBe(true);
    expect(isDbError(err, 'DB_MIGRATION_FAILED')).toBe(false);
  });

  it('recognises an error from another copy of the package', () => {
    const foreign = Object.assign(new Error('gap'), { code: 'DB_MIGRATION_GAP', [Symbol.for('agora.db.error')]: true });
    expect(isDbError(foreign, 'DB_MIGRATION_GAP')).toBe(true);
  });

  it('rejects look-alikes without the flag', () => {
    expect(isDbError(Object.assign(new Error('x'), { code: 'DB_MIGRATION_GAP' }))).toBe(false);
    expect(isDbError(null)).toBe(false);
    expect(isDbError('DB_MIGRATION_GAP')).toBe(false);
  });
});

describe('constraint guards', () => {
  const pgError = (code: string, constraint?: string) => Object.assign(new Error('pg'), { code, constraint });

  it('match the SQLSTATE and, when given, the constraint', () => {
    expect(isUniqueViolation(pgError('23505', 'users_handle_key'))).toBe(true);
    expect(isUniqueViolation(pgError('23505', 'users_handle_key'), 'users_handle_key')).toBe(true);
    expect(isUniqueViolation(pgError('23505', 'users_email_key'), 'users_handle_key')).toBe(false);
    expect(isForeignKeyViolation(pgError('23503'))).toBe(true);
    expect(isCheckViolation(pgError('23514'))).toBe(true);
    expect(isUniqueViolation(pgError('23503'))).toBe(false);
    expect(isUniqueViolation(undefined)).toBe(false);
  });

  it('treat serialization failures and deadlocks as transaction conflicts', () => {
    expect(isTransactionConflict(pgError('40001'))).toBe(true);
    expect(isTransactionConflict(pgError('40P01'))).toBe(true);
    expect(isTransactionConflict(pgError('23505'))).toBe(false);
  });
});

describe('schema names', () => {
  it('accept plain lower-case identifiers', () => {
    expect(() => assertSchemaName('posts_v2')).not.toThrow();
    expect(() => assertSchemaName('_private')).not.toThrow();
  });

  it('reject anything that could inject SQL or alias another name', () => {
    for (const name of ['Posts', '1posts', 'posts;drop', 'a b', '', 'a'.repeat(64), 'posts"']) {
      expect(() => assertSchemaName(name)).toThrow(expect.objectContaining({ code: 'DB_INVALID_SCHEMA_NAME' }));
      expect(() => createPool({ url: 'postgres://x@127.0.0.1:1/x', schema: name })).toThrow(
        expect.objectContaining({ code: 'DB_INVALID_SCHEMA_NAME' }),
      );
    }
  });
});
