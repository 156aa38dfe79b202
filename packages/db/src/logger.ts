/**
 * A log method in pino's shape: a context object and an optional message, or a message alone.
 */
export interface DbLogFn {
  (obj: object, msg?: string): void;
  (msg: string): void;
}

/**
 * The logging surface `@agora/db` needs. A pino logger satisfies it as is, so the runtime
 * passes its own child logger in; db never imports pino itself.
 *
 * @example
 * ```ts
 * import pino from 'pino';
 * const logger: DbLogger = pino().child({ component: 'db' });
 * ```
 */
export interface DbLogger {
  debug: DbLogFn;
  info: DbLogFn;
  warn: DbLogFn;
  error: DbLogFn;
}

const ignore: DbLogFn = () => undefined;

/**
 * A logger that drops everything; the default when no logger is given.
 *
 * @example
 * ```ts
 * const pg = new EmbeddedPostgres({ dataDir, logger: noopLogger });
 * ```
 */
export const noopLogger: DbLogger = Object.freeze({ debug: ignore, info: ignore, warn: ignore, error: ignore });
