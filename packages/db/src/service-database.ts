import type pg from 'pg';
import type { DbLogger } from './logger.js';
import { migrate } from './migrate.js';
import { loadMigrations } from './migrations-load.js';
import { createPool, pingDatabase } from './pool.js';

export interface ServiceDatabaseOptions {
  readonly url: string;
  /** The service's own schema: its pool sees nothing else by unqualified name. */
  readonly schema: string;
  /** The service's `NNNN_name.sql` files. */
  readonly migrationsDir: string | URL;
  readonly max?: number;
  readonly logger?: DbLogger;
}

/**
 * What a service needs of PostgreSQL, shaped for a host: a pool whose search_path is the
 * service's schema, a component that migrates on start and closes the pool on stop, and a
 * readiness check. The pool exists at once (connections open lazily), so repositories can
 * be built before the component starts.
 * @example
 * const db = serviceDatabase({ url, schema: 'social', migrationsDir: new URL('../migrations/', import.meta.url) });
 * host.add(db.component);
 * await db.pool.query('select count(*) from posts');
 */
export function serviceDatabase(options: ServiceDatabaseOptions) {
  const pool: pg.Pool = createPool({ url: options.url, schema: options.schema, max: options.max, applicationName: options.schema, logger: options.logger });
  return {
    pool,
    component: {
      name: `${options.schema}-database`,
      async start() {
        const migrations = await loadMigrations(options.migrationsDir);
        await migrate(pool, { schema: options.schema, migrations, logger: options.logger });
      },
      stop: () => pool.end(),
    },
    readiness: {
      name: `${options.schema}-database`,
      check: async (signal: AbortSignal) => {
        await pingDatabase(pool, signal);
      },
    },
  };
}
