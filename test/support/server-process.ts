import { spawn } from 'node:child_process';
import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { connect } from 'node:net';
import { delimiter, join } from 'node:path';
import { freePort } from './process.js';

/** A throwaway server process started by {@link startServerProcess}. */
export interface ServerProcess {
  /** Where clients connect, e.g. `redis://127.0.0.1:<port>`. */
  readonly url: string;
  /** SIGTERM, then waits for the process to exit (SIGKILL after 5 s), then cleans up after it. */
  stop(): Promise<void>;
}

/** How to run one server binary on a given port. */
export interface ServerLaunch {
  readonly args: readonly string[];
  readonly url: string;
  /** Runs once the process is gone (a store directory to remove, say). */
  readonly cleanup?: () => Promise<void>;
}

export interface ServerProcessOptions {
  /** The binary's file name, looked up on PATH and then in `extraDirs`. */
  readonly binary: string;
  readonly extraDirs?: readonly string[];
  /** The error thrown when the binary is nowhere: tests that need the server never skip. */
  readonly missing: string;
  readonly launch: (port: number) => Promise<ServerLaunch>;
  /** True once the server on `port` serves (see {@link answers}). */
  readonly ready: (port: number) => Promise<boolean>;
  /** What the failure says when `ready` never turned true, e.g. 'did not answer PING'. */
  readonly notReady: string;
}

/** The executable `name` in PATH (or `extraDirs`, often off a user's PATH), or undefined. */
async function findBinary(name: string, extraDirs: readonly string[]): Promise<string | undefined> {
  for (const dir of [...(process.env.PATH ?? '').split(delimiter), ...extraDirs]) {
    if (dir === '') continue;
    const candidate = join(dir, name);
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

/**
 * True when whatever listens on `port` sends a first line that `accept` likes within a second,
 * after being sent `greeting` (if any) on connecting.
 *
 * @example
 * await answers(port, (line) => line.startsWith('+PONG'), 'PING\r\n');
 */
export function answers(port: number, accept: (reply: string) => boolean, greeting?: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    let reply = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('error', () => done(false));
    if (greeting !== undefined) socket.once('connect', () => socket.write(greeting));
    socket.on('data', (chunk: Buffer) => {
      reply += chunk.toString();
      if (reply.includes('\r\n')) done(accept(reply));
    });
  });
}

async function startOnce(binary: string, options: ServerProcessOptions): Promise<ServerProcess | { failed: string }> {
  const port = await freePort();
  const { args, url, cleanup } = await options.launch(port);
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
    if (exit === undefined) {
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(killer);
    }
    await cleanup?.();
  };

  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (exit !== undefined) {
      await stop();
      return { failed: `${options.binary} ${exit}:\n${output}` };
    }
    if (await options.ready(port)) return { url, stop };
    await new Promise((r) => setTimeout(r, 50));
  }
  await stop();
  return { failed: `${options.binary} ${options.notReady} on port ${port} within 15 s:\n${output}` };
}

/**
 * Starts a server binary on a free loopback port and waits until it serves. The free port may
 * be taken between the check and the server binding it, so it tries three ports before failing.
 *
 * @example
 * const server = await startServerProcess({ binary: 'redis-server', missing: 'no redis-server', notReady: 'did not answer PING',
 *   launch: async (port) => ({ args: ['--port', String(port)], url: `redis://127.0.0.1:${port}` }),
 *   ready: (port) => answers(port, (reply) => reply.startsWith('+PONG'), 'PING\r\n') });
 * try { await run(server.url); } finally { await server.stop(); }
 */
export async function startServerProcess(options: ServerProcessOptions): Promise<ServerProcess> {
  const binary = await findBinary(options.binary, options.extraDirs ?? []);
  if (binary === undefined) throw new Error(options.missing);
  let failure = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    const started = await startOnce(binary, options);
    if (!('failed' in started)) return started;
    failure = started.failed;
  }
  throw new Error(failure);
}
