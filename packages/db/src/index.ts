// The public API of @agora/db. Everything not exported here is internal.
export { EmbeddedPostgres, type EmbeddedPostgresOptions } from './embedded.js';
export type { RunAsStrategy } from './embedded-user.js';
export {
  DbError,
  dbErrorCatalogue,
  isDbError,
  isUniqueViolation,
  isForeignKeyViolation,
  isCheckViolation,
  isTransactionConflict,
  type DbErrorCode,
  type PgErrorFields,
} from './errors.js';
export { assertSchemaName } from './identifiers.js';
export {
  createIdGenerator,
  idTimestamp,
  idNode,
  parseId,
  DEFAULT_ID_EPOCH_MS,
  type IdGenerator,
  type IdGeneratorOptions,
} from './ids.js';
export { noopLogger, type DbLogger, type DbLogFn } from './logger.js';
export { migrate, type MigrateOptions } from './migrate.js';
export { loadMigrations, migrationChecksum, type Migration } from './migrations-load.js';
export { createPool, poolStats, pingDatabase, type CreatePoolOptions, type PoolStats, type PingOptions } from './pool.js';
export {
  withTransaction,
  type Queryable,
  type IsolationLevel,
  type TransactionOptions,
  type TransactionRetry,
} from './tx.js';
export { serviceDatabase, type ServiceDatabaseOptions } from './service-database.js';
