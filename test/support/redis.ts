import { tmpdir } from 'node:os';
import { answers, startServerProcess, type ServerProcess } from './server-process.js';

export const REDIS_MISSING = 'redis-server not found: install it (Debian: apt-get install redis-server) or set REDIS_URL';

export interface RedisServer extends ServerProcess {
  /** `redis://127.0.0.1:<port>` */
  readonly url: string;
}

/**
 * Starts a throwaway redis-server from PATH on a free loopback port and waits until it answers
 * PING. Throws {@link REDIS_MISSING} when there is none: tests that need Redis never skip.
 * @example
 * const redis = await startRedisServer();
 * try { await runBench(redis.url); } finally { await redis.stop(); }
 */
export function startRedisServer(): Promise<RedisServer> {
  return startServerProcess({
    binary: 'redis-server',
    missing: REDIS_MISSING,
    // No persistence and no daemon: a throwaway server that dies with its parent's stop().
    launch: async (port) => ({
      args: ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--dir', tmpdir()],
      url: `redis://127.0.0.1:${port}`,
    }),
    ready: (port) => answers(port, (reply) => reply.startsWith('+PONG'), 'PING\r\n'),
    notReady: 'did not answer PING',
  });
}
