import { loadConfig, type ConfigSources } from '@agora/runtime';
import { Type, type Static } from '@sinclair/typebox';

const Port = (def: number) => Type.Integer({ minimum: 0, maximum: 65535, default: def });
const LogLevel = Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)), { default: 'info' });
const section = <T extends Parameters<typeof Type.Object>[0]>(properties: T) => Type.Object(properties, { additionalProperties: false, default: {} });

/** Every setting of the system, with its default. Documented in README.md#configuration. */
export const AgoraConfigSchema = Type.Object(
  {
    /** Where embedded mode keeps its database and its development signing key. */
    dataDir: Type.String({ minLength: 1, default: '.agora' }),
    logLevel: LogLevel,
    gateway: section({
      host: Type.String({ minLength: 1, default: 'localhost' }),
      port: Port(8080),
      bodyLimitBytes: Type.Integer({ minimum: 1024, maximum: 64 * 1024 * 1024, default: 1024 * 1024 }),
      upstreamTimeoutMs: Type.Integer({ minimum: 1, maximum: 600_000, default: 5000 }),
    }),
    database: section({
      /** An external PostgreSQL; when absent, embedded mode starts its own. */
      url: Type.Optional(Type.String({ pattern: '^postgres(ql)?://' })),
      /** Port of the embedded PostgreSQL; 0 picks a free one. */
      embeddedPort: Port(0),
      poolMax: Type.Integer({ minimum: 1, maximum: 200, default: 10 }),
    }),
    bus: section({
      /**
       * Where events go: `postgres://...`, `redis://...`, `nats://...` or `memory:`. When absent,
       * the PostgreSQL transport on the system's own database (schema `bus`).
       */
      url: Type.Optional(Type.String({ pattern: '^(postgres(ql)?|rediss?|nats|memory):' })),
    }),
    auth: section({
      /** PKCS#8 PEM Ed25519 private key; when absent, one is made and kept under dataDir. */
      privateKeyPem: Type.Optional(Type.String({ minLength: 1 })),
      issuer: Type.String({ minLength: 1, default: 'agora' }),
      audience: Type.String({ minLength: 1, default: 'agora-api' }),
      tokenTtlSeconds: Type.Integer({ minimum: 60, maximum: 30 * 24 * 3600, default: 3600 }),
      /** Handles whose tokens carry the `admin` scope, which the /admin routes require. */
      adminHandles: Type.Array(Type.String({ pattern: '^[a-z0-9_]{3,30}$' }), { default: [] }),
    }),
    shutdown: section({
      /** The whole graceful stop must end within this. */
      timeoutMs: Type.Integer({ minimum: 1000, maximum: 600_000, default: 20_000 }),
    }),
  },
  { additionalProperties: false },
);

export type AgoraConfig = Static<typeof AgoraConfigSchema>;

export const AgoraConfigEnv = {
  AGORA_DATA_DIR: 'dataDir',
  AGORA_LOG_LEVEL: 'logLevel',
  AGORA_GATEWAY_HOST: 'gateway.host',
  AGORA_GATEWAY_PORT: 'gateway.port',
  AGORA_BODY_LIMIT_BYTES: 'gateway.bodyLimitBytes',
  AGORA_UPSTREAM_TIMEOUT_MS: 'gateway.upstreamTimeoutMs',
  DATABASE_URL: 'database.url',
  AGORA_DB_PORT: 'database.embeddedPort',
  AGORA_DB_POOL_MAX: 'database.poolMax',
  AGORA_BUS_URL: 'bus.url',
  AGORA_JWT_PRIVATE_KEY: 'auth.privateKeyPem',
  AGORA_JWT_ISSUER: 'auth.issuer',
  AGORA_JWT_AUDIENCE: 'auth.audience',
  AGORA_TOKEN_TTL_SECONDS: 'auth.tokenTtlSeconds',
  AGORA_ADMIN_HANDLES: 'auth.adminHandles',
  AGORA_SHUTDOWN_TIMEOUT_MS: 'shutdown.timeoutMs',
} as const;

/** Reads the system's configuration: defaults < file < environment < command line. */
export function readAgoraConfig(sources: ConfigSources): AgoraConfig {
  return loadConfig({ schema: AgoraConfigSchema, env: AgoraConfigEnv }, sources);
}
