import { spawn } from 'node:child_process';
import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { freePort } from './process.js';

export const REDIS_MISSING = 'redis-server not found: install it (Debian: apt-get install redis-server) or set REDIS_URL';

export interface RedisServer {
  /** `redis://127.0.0.1:<port>` */
  readonly url: string;
  /** SIGTERM, then waits for the process to exit (SIGKILL after 5 s). */
  stop(): Promise<void>;
}

/** The redis-server on PATH, or undefined. */
async function findRedisServer(): Promise<string | undefined> {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, 'redis-server');
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

/** True when a Redis server answers PING on `port` within a second. */
function answersPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    let reply = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk: Buffer) => {
      reply += chunk.toString();
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
  });
}

async function startOnce(binary: string): Promise<RedisServer | { failed: string }> {
  const port = await freePort();
  // No persistence and no daemon: a throwaway server that dies with its parent's stop().
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--dir', tmpdir()];
  const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
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
    if (exit !== undefined) return;
    child.kill('SIGTERM');
    const killer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(killer);
  };

  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (exit !== undefined) return { failed: `redis-server ${exit}:\n${output}` };
    if (await answersPing(port)) return { url: `redis://127.0.0.1:${port}`, stop };
    await new Promise((r) => setTimeout(r, 50));
  }
  await stop();
  return { failed: `redis-server did not answer PING on port ${port} within 15 s:\n${output}` };
}

/**
 * Starts a throwaway redis-server from PATH on a free loopback port and waits until it answers
 * PING. Throws {@link REDIS_MISSING} when there is none: tests that need Redis never skip.
 * @example
 * const redis = await startRedisServer();
 * try { await runBench(redis.url); } finally { await redis.stop(); }
 */
export async function startRedisServer(): Promise<RedisServer> {
  const binary = await findRedisServer();
  if (binary === undefined) throw new Error(REDIS_MISSING);
  // The free port may be taken between the check and redis-server binding it: try a few.
  let failure = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    const started = await startOnce(binary);
    if (!('failed' in started)) return started;
    failure = started.failed;
  }
  throw new Error(failure);
}
