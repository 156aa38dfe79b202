import { createTokenIssuer, createTokenVerifier, verificationKeyOf, type SigningKey } from '@agora/auth';
import { createIdGenerator, poolStats, serviceDatabase } from '@agora/db';
import type { Registry } from '@agora/discovery';
import { poolMetrics, type Logger, type Metrics } from '@agora/observability';
import { createHttpService, registeredService, type Component } from '@agora/runtime';
import { accountsApp } from './app/accounts.js';
import { argon2Hasher } from './adapters/argon2-hasher.js';
import { identityRoutes } from './adapters/http.js';
import { postgresAccounts } from './adapters/postgres-accounts.js';

export const SERVICE = 'identity';

export interface IdentityOptions {
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly registry: Registry;
  readonly databaseUrl: string;
  readonly poolMax?: number;
  readonly signingKey: SigningKey;
  readonly tokens: { readonly issuer: string; readonly audience: string; readonly ttlSeconds: number };
  /** 0..1023, unique per running instance: part of every id this instance makes. */
  readonly nodeId: number;
  /** Handles whose tokens carry the `admin` scope. */
  readonly adminHandles?: readonly string[];
  readonly instanceId?: string;
  readonly host?: string;
  readonly port?: number;
  readonly bodyLimitBytes?: number;
}

/**
 * The composition root of identity: builds the adapters, injects them, and returns the
 * component the host starts and stops.
 * @example
 * host.add(await createIdentityService({ logger, metrics, registry, databaseUrl, signingKey, tokens, nodeId: 1 }));
 */
export async function createIdentityService(options: IdentityOptions): Promise<Component> {
  const logger = options.logger.child({ service: SERVICE });
  const database = serviceDatabase({
    url: options.databaseUrl,
    schema: SERVICE,
    migrationsDir: new URL('../migrations/', import.meta.url),
    max: options.poolMax ?? 10,
    logger,
  });
  poolMetrics(options.metrics, SERVICE, () => ({ ...poolStats(database.pool) }));
  const ids = createIdGenerator({ nodeId: options.nodeId });
  const http = await createHttpService({
    name: SERVICE,
    logger,
    metrics: options.metrics,
    host: options.host,
    port: options.port,
    bodyLimitBytes: options.bodyLimitBytes,
    readiness: [database.readiness],
    verifier: createTokenVerifier({ ...options.tokens, key: verificationKeyOf(options.signingKey) }),
    openapi: { title: 'Agora identity', version: '0.1.0', description: 'Accounts and tokens.' },
  });
  const accounts = accountsApp({
    accounts: postgresAccounts(database.pool),
    hasher: argon2Hasher(),
    tokens: createTokenIssuer({ ...options.tokens, key: options.signingKey }),
    newId: () => ids.next().toString(),
    adminHandles: options.adminHandles,
  });
  identityRoutes(http.app, accounts);
  return registeredService({
    name: SERVICE,
    instanceId: options.instanceId ?? `${SERVICE}-${options.nodeId}`,
    registry: options.registry,
    http,
    dependencies: [database.component],
  });
}
