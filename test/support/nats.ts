import { spawn } from 'node:child_process';
import { constants } from 'node:fs';
import { access, mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { freePort } from './process.js';

export const NATS_MISSING = 'nats-server not found: install it (Debian: apt-get install nats-server) or set NATS_URL';

export interface NatsServer {
  /** `nats://127.0.0.1:<port>` */
  readonly url: string;
  /** SIGTERM, then waits for the process to exit (SIGKILL after 5 s), and removes its store. */
  stop(): Promise<void>;
}

/** The nats-server on PATH (or Debian's /usr/sbin, often off a user's PATH), or undefined. */
async function findNatsServer(): Promise<string | undefined> {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin'];
  for (const dir of dirs) {
    if (dir === '') continue;
    const candidate = join(dir, 'nats-server');
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

/** True when a NATS server greets with INFO on `port` within a second. */
function greets(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    let reply = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('error', () => done(false));
    socket.on('data', (chunk: Buffer) => {
      reply += chunk.toString();
      if (reply.includes('\r\n')) done(reply.startsWith('INFO ') && reply.includes('"jetstream":true'));
    });
  });
}

async function startOnce(binary: string): Promise<NatsServer | { failed: string }> {
  const port = await freePort();
  const storeDir = await mkdtemp(join(tmpdir(), 'agora-test-nats-'));
  const child = spawn(binary, ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', storeDir], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  let exit: string | undefined;
  const exited = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exit = `exited with ${code ?? signal}`;
      resolve();
    });
    child.once('error', (err) => {
      exit = `could not start: ${err.message}`;
      resolve();
    });
  });

  const stop = async () => {
    if (exit === undefined) {
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(killer);
    }
    await rm(storeDir, { recursive: true, force: true });
  };

  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (exit !== undefined) {
      await stop();
      return { failed: `nats-server ${exit}:\n${output}` };
    }
    if (await greets(port)) return { url: `nats://127.0.0.1:${port}`, stop };
    await new Promise((r) => setTimeout(r, 50));
  }
  await stop();
  return { failed: `nats-server did not accept connections on port ${port} within 15 s:\n${output}` };
}

/**
 * Starts a throwaway nats-server with JetStream on a free loopback port, its store in a temp dir
 * removed at stop, and waits until it greets with JetStream enabled. Throws {@link NATS_MISSING}
 * when there is none: tests that need NATS never skip.
 * @example
 * const nats = await startNatsServer();
 * try { await runBench(nats.url); } finally { await nats.stop(); }
 */
export async function startNatsServer(): Promise<NatsServer> {
  const binary = await findNatsServer();
  if (binary === undefined) throw new Error(NATS_MISSING);
  // The free port may be taken between the check and nats-server binding it: try a few.
  let failure = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    const started = await startOnce(binary);
    if (!('failed' in started)) return started;
    failure = started.failed;
  }
  throw new Error(failure);
}
