import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { answers, startServerProcess, type ServerProcess } from './server-process.js';

export const NATS_MISSING = 'nats-server not found: install it (Debian: apt-get install nats-server) or set NATS_URL';

export interface NatsServer extends ServerProcess {
  /** `nats://127.0.0.1:<port>`; `stop()` also removes the server's JetStream store. */
  readonly url: string;
}

/**
 * Starts a throwaway nats-server with JetStream on a free loopback port, its store in a temp dir
 * removed at stop, and waits until it greets with JetStream enabled. Throws {@link NATS_MISSING}
 * when there is none: tests that need NATS never skip.
 * @example
 * const nats = await startNatsServer();
 * try { await runBench(nats.url); } finally { await nats.stop(); }
 */
export function startNatsServer(): Promise<NatsServer> {
  return startServerProcess({
    binary: 'nats-server',
    // Debian installs it in /usr/sbin, often off a user's PATH.
    extraDirs: ['/usr/sbin', '/usr/local/sbin'],
    missing: NATS_MISSING,
    launch: async (port) => {
      const storeDir = await mkdtemp(join(tmpdir(), 'agora-test-nats-'));
      return {
        args: ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', storeDir],
        url: `nats://127.0.0.1:${port}`,
        cleanup: () => rm(storeDir, { recursive: true, force: true }),
      };
    },
    // A NATS server greets with INFO unasked; JetStream must be on in it.
    ready: (port) => answers(port, (reply) => reply.startsWith('INFO ') && reply.includes('"jetstream":true')),
    notReady: 'did not accept connections',
  });
}
