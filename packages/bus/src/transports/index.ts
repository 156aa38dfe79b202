import { BusError } from '../errors.js';
import type { Transport } from '../transport.js';
import { createMemoryTransport, type MemoryTransportOptions } from './memory.js';
import { createPostgresTransport, type PostgresTransportOptions } from './postgres/index.js';
import { createNatsTransport } from './nats/index.js';
import { createRedisStreamsTransport } from './redis-streams/index.js';

/** What adapters may need besides the URL; each reads its own part. */
export interface TransportDeps {
  /** Options of the memory transport (`memory:`). */
  readonly memory?: MemoryTransportOptions;
  /** Options of the postgres transport (`postgres://`), besides the URL. */
  readonly postgres?: Omit<PostgresTransportOptions, 'url' | 'pool'>;
}

/**
 * Resolves a transport from a URL scheme, the one place that knows every adapter.
 *
 * - `memory:` → {@link createMemoryTransport} (in-process; tests, single-process runs)
 * - `postgres://` → the postgres transport (durable; its own schema, `bus` by default)
 * - `redis://`, `rediss://` → the Redis Streams transport
 * - `nats://` → the NATS JetStream transport
 * - anything else fails with BusError `invalid_option` naming the scheme.
 *
 * @throws BusError `invalid_option` for a malformed URL or a scheme without an adapter.
 * @example
 * const transport = createTransport(process.env.BUS_URL ?? 'memory:');
 */
export function createTransport(url: string, deps: TransportDeps = {}): Transport {
  const match = /^([a-z][a-z0-9+.-]*):/i.exec(url);
  if (match === null) throw new BusError('invalid_option', `not a transport URL: ${url}`, { url });
  const scheme = (match[1] as string).toLowerCase();
  switch (scheme) {
    case 'memory':
      return createMemoryTransport(deps.memory);
    case 'postgres':
    case 'postgresql':
      return createPostgresTransport({ url, ...deps.postgres });
    case 'redis':
    case 'rediss':
      return createRedisStreamsTransport({ url });
    case 'nats':
      return createNatsTransport({ url });
    default:
      throw new BusError('invalid_option', `no transport for scheme ${scheme}:`, { scheme });
  }
}
