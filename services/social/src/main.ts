import { createTokenVerifier, type VerificationKey } from '@agora/auth';
import { createOutboxRelay, outboxMetrics, type OutboxRelayOptions, type Transport } from '@agora/bus';
import type pg from 'pg';
import { createIdGenerator, poolStats, serviceDatabase } from '@agora/db';
import type { Registry } from '@agora/discovery';
import { poolMetrics, type Logger, type Metrics } from '@agora/observability';
import { createHttpService, createServiceClient, registeredService, type Component } from '@agora/runtime';
import { socialApp } from './app/social.js';
import { socialEvents } from './domain/events.js';
import { socialRoutes } from './adapters/http.js';
import { identityDirectory } from './adapters/identity-directory.js';
import { socialOutbox } from './adapters/outbox.js';
import { postgresFollows, postgresPosts, postgresProfiles } from './adapters/postgres-store.js';

export const SERVICE = 'social';

export interface SocialOptions {
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly registry: Registry;
  readonly databaseUrl: string;
  readonly poolMax?: number;
  /** Tokens are verified here too: a service trusts no caller, the gateway included. */
  readonly verificationKey: VerificationKey;
  readonly tokens: { readonly issuer: string; readonly audience: string };
  /** 0..1023, unique per running instance: part of every id this instance makes. */
  readonly nodeId: number;
  readonly instanceId?: string;
  readonly host?: string;
  readonly port?: number;
  readonly bodyLimitBytes?: number;
  /**
   * Where social's events go: the outbox relay publishes them there. Without it they stay in
   * the outbox table (nothing is lost; a relay started later sends them).
   */
  readonly transport?: Transport;
  /** With a transport in the same database: publish and clear the outbox in one transaction. */
  readonly publishWithin?: OutboxRelayOptions['publishWithin'];
}

/**
 * The composition root of social.
 * @example
 * host.add(await createSocialService({ logger, metrics, registry, databaseUrl, verificationKey, tokens, nodeId: 2 }));
 */
export async function createSocialService(options: SocialOptions): Promise<Component> {
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
    verifier: createTokenVerifier({ ...options.tokens, key: options.verificationKey }),
    openapi: { title: 'Agora social', version: '0.1.0', description: 'Profiles, follows and posts.' },
  });
  const outbox = socialOutbox(SERVICE);
  const social = socialApp({
    profiles: postgresProfiles(database.pool),
    follows: postgresFollows(database.pool, outbox),
    posts: postgresPosts(database.pool, outbox),
    directory: identityDirectory(createServiceClient({ service: 'identity', registry: options.registry })),
    newId: () => ids.next().toString(),
  });
  socialRoutes(http.app, social);
  return registeredService({
    name: SERVICE,
    instanceId: options.instanceId ?? `${SERVICE}-${options.nodeId}`,
    registry: options.registry,
    http,
    dependencies: [database.component, ...(options.transport === undefined ? [] : [relayComponent(options, database.pool, logger, options.metrics)])],
  });
}

/** The outbox relay as a component: after migrations (the outbox table), before the server. */
function relayComponent(options: SocialOptions, pool: pg.Pool, logger: Logger, metrics: Metrics): Component {
  const onPublished = outboxMetrics(metrics, SERVICE, async () => Number((await pool.query<{ n: string }>('SELECT count(*) AS n FROM outbox')).rows[0]?.n ?? 0));
  const relay = createOutboxRelay({
    pool,
    schema: SERVICE,
    transport: options.transport!,
    ...(options.publishWithin === undefined ? {} : { publishWithin: options.publishWithin }),
    logger,
    onPublished,
  });
  return {
    name: `${SERVICE}-outbox-relay`,
    async start() {
      for (const event of socialEvents) await options.transport!.declareTopic({ name: event.topic, partitions: 8 });
      await relay.start();
    },
    stop: () => relay.stop(),
  };
}
