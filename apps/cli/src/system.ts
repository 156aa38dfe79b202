import { resolve } from 'node:path';
import { loadOrCreateSigningKey, signingKeyFromPem, verificationKeyOf, createTokenVerifier, type SigningKey } from '@agora/auth';
import { createPostgresTransport, createTransport, type DeadLetterStore, type PostgresTransport, type Transport } from '@agora/bus';
import { EmbeddedPostgres } from '@agora/db';
import { createMemoryRegistry } from '@agora/discovery';
import { createGateway } from '@agora/gateway';
import { createIdentityService } from '@agora/identity';
import { createMetrics, type Logger, type Metrics } from '@agora/observability';
import { deferred, Host, type Component } from '@agora/runtime';
import { createSocialService } from '@agora/social';
import type { AgoraConfig } from './config.js';
import { agoraRoutes } from './routes.js';

export interface RunningSystem {
  readonly host: Host;
  /** Base URL of the gateway. */
  gatewayUrl(): string;
  /** The database in use: the embedded one's, or the configured one. */
  databaseUrl(): string;
  /** The message transport events go to; known once started. */
  transport(): Transport;
}

/**
 * The bus transport: the configured one, or the PostgreSQL transport on the system's own
 * database. In the latter case the outbox relay publishes and clears the outbox in one
 * transaction (`publishWithin`): each event is published exactly once.
 */
function busComponent(config: AgoraConfig, databaseUrl: () => string, logger: Logger) {
  let transport: Transport | undefined;
  return {
    name: 'bus',
    async start() {
      transport = config.bus.url === undefined ? createPostgresTransport({ url: databaseUrl(), logger: logger.child({ component: 'bus' }) }) : createTransport(config.bus.url);
    },
    async stop() {
      await transport?.close();
    },
    transport(): Transport {
      if (transport === undefined) throw new Error('the bus is not started');
      return transport;
    },
    /** Set when the transport shares the services' database. */
    sameDatabase(): PostgresTransport | undefined {
      return config.bus.url === undefined ? (transport as PostgresTransport) : undefined;
    },
  };
}

/** The PostgreSQL of the system: the configured server, or an embedded one under dataDir. */
function databaseComponent(config: AgoraConfig, logger: Logger): Component & { url(): string } {
  if (config.database.url !== undefined) {
    const url = config.database.url;
    return { name: 'postgres', start: async () => undefined, stop: async () => undefined, url: () => url };
  }
  const embedded = new EmbeddedPostgres({
    dataDir: resolve(config.dataDir, 'postgres'),
    port: config.database.embeddedPort,
    logger: logger.child({ component: 'postgres' }),
  });
  return {
    name: 'postgres',
    async start() {
      const { url } = await embedded.start();
      logger.info({ url: url.replace(/\/\/[^@]*@/, '//') }, 'embedded PostgreSQL is up');
    },
    stop: () => embedded.stop(),
    url: () => embedded.url,
  };
}

/** The transport's dead letter queue, for a gateway built before the transport starts. */
function lazyDeadLetters(transport: () => Transport): DeadLetterStore {
  return {
    list: (filter) => transport().deadLetters.list(filter),
    get: (id) => transport().deadLetters.get(id),
    replay: (id) => transport().deadLetters.replay(id),
    purge: (filter) => transport().deadLetters.purge(filter),
  };
}

async function signingKeyOf(config: AgoraConfig): Promise<SigningKey> {
  if (config.auth.privateKeyPem !== undefined) return signingKeyFromPem(config.auth.privateKeyPem);
  return loadOrCreateSigningKey(resolve(config.dataDir, 'keys', 'jwt-ed25519.pem'));
}

/**
 * Embedded mode: every service in this process, each on its own loopback port, found by the
 * gateway through an in-memory registry; one PostgreSQL, each service in its own schema.
 * Returns the host, not yet started.
 * @example
 * const system = await buildEmbeddedSystem(readAgoraConfig({ env: process.env }), logger);
 * await system.host.start();
 * await fetch(`${system.gatewayUrl()}/healthz`);
 * await system.host.stop();
 */
export async function buildEmbeddedSystem(config: AgoraConfig, logger: Logger, metrics: Metrics = createMetrics()): Promise<RunningSystem> {
  const registry = createMemoryRegistry();
  const signingKey = await signingKeyOf(config);
  const tokens = { issuer: config.auth.issuer, audience: config.auth.audience };
  const database = databaseComponent(config, logger);
  const bus = busComponent(config, () => database.url(), logger);
  const common = { logger, metrics, registry, poolMax: config.database.poolMax, bodyLimitBytes: config.gateway.bodyLimitBytes };
  const gateway = await createGateway({
    routes: agoraRoutes,
    registry,
    verifier: createTokenVerifier({ ...tokens, key: verificationKeyOf(signingKey) }),
    logger,
    metrics,
    host: config.gateway.host,
    port: config.gateway.port,
    bodyLimitBytes: config.gateway.bodyLimitBytes,
    upstreamTimeoutMs: config.gateway.upstreamTimeoutMs,
    drainTimeoutMs: Math.floor(config.shutdown.timeoutMs / 2),
    deadLetters: lazyDeadLetters(() => bus.transport()),
  });
  const host = new Host({ logger, stopTimeoutMs: config.shutdown.timeoutMs })
    .add(database)
    .add(bus)
    .add(
      deferred('identity', () =>
        createIdentityService({
          ...common,
          databaseUrl: database.url(),
          signingKey,
          tokens: { ...tokens, ttlSeconds: config.auth.tokenTtlSeconds },
          adminHandles: config.auth.adminHandles,
          nodeId: 1,
        }),
      ),
    )
    .add(
      deferred('social', () => {
        const shared = bus.sameDatabase();
        return createSocialService({
          ...common,
          databaseUrl: database.url(),
          verificationKey: verificationKeyOf(signingKey),
          tokens,
          nodeId: 2,
          transport: bus.transport(),
          ...(shared === undefined ? {} : { publishWithin: (tx, topic, messages) => shared.publishWithin(tx, topic, messages) }),
        });
      }),
    )
    .add(gateway.component);
  return { host, gatewayUrl: () => gateway.url(), databaseUrl: () => database.url(), transport: () => bus.transport() };
}
