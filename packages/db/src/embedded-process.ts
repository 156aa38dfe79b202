import { spawn, type ChildProcess } from 'node:child_process';
import { readFile, unlink } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { DbError } from './errors.js';
import type { RunCommand } from './embedded-user.js';
import type { DbLogger } from './logger.js';

/** The last lines a process printed, each also logged at debug level as it arrives. */
export interface LogTail {
  /** Feeds raw output; complete lines are logged and kept. */
  write(chunk: Buffer | string): void;
  /** The kept lines, oldest first, including a trailing partial line. */
  lines(): string[];
}

/**
 * Keeps the last `max` lines of a process's output so a startup failure can say why, and logs
 * every line at debug level under `source`.
 *
 * @example
 * ```ts
 * const tail = createLogTail(logger, 'postgres');
 * child.stderr.on('data', tail.write);
 * ```
 */
export function createLogTail(logger: DbLogger, source: string, max = 50): LogTail {
  const kept: string[] = [];
  let partial = '';
  const keep = (line: string): void => {
    if (line === '') return;
    logger.debug({ source, line }, `${source}: ${line}`);
    kept.push(line);
    if (kept.length > max) kept.shift();
  };
  return {
    write(chunk) {
      const text = partial + chunk.toString();
      const parts = text.split('\n');
      partial = parts.pop() ?? '';
      parts.forEach(keep);
    },
    lines: () => (partial === '' ? [...kept] : [...kept, partial]),
  };
}

/**
 * Asks the kernel for a free TCP port on 127.0.0.1. Another process can take it before we
 * bind it, so callers retry with a new port when the bind fails.
 *
 * @example
 * ```ts
 * const port = await findFreePort();
 * ```
 */
export function findFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/**
 * Whether `pid` is a live process that is (still) a PostgreSQL server. A zombie (killed, not
 * yet reaped) counts as dead, and so does a live pid that now belongs to another program:
 * after a reboot or in a fresh container, pids get reused.
 */
export async function isLivePostgres(pid: number): Promise<boolean> {
  try {
    process.kill(pid, 0);
  } catch (err) {
    // EPERM: alive, owned by another user; we cannot tell more without /proc.
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  if (process.platform !== 'linux') return true;
  try {
    const status = await readFile(`/proc/${pid}/stat`, 'utf8');
    // Field 3, after the parenthesised command name, is the state; Z is a zombie.
    if (/\)\s+Z\s/.test(status)) return false;
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8');
    return cmdline.includes('postgres');
  } catch {
    return false;
  }
}

/**
 * Removes a `postmaster.pid` left by a postgres that was SIGKILLed (or lost with its machine),
 * so the next start is not refused. Throws `DB_EMBEDDED_ALREADY_RUNNING` if the postgres it
 * names is alive: two servers on one data directory would corrupt it. PostgreSQL keeps a
 * second interlock of its own (a shared memory segment keyed by the data directory), so even
 * if orphaned backends outlive their postmaster, a new server refuses to start until they go.
 */
export async function clearStalePidFile(dataDir: string, logger: DbLogger): Promise<void> {
  const pidFile = join(dataDir, 'postmaster.pid');
  let content: string;
  try {
    content = await readFile(pidFile, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  const pid = Number.parseInt(content.split('\n')[0] ?? '', 10);
  if (Number.isInteger(pid) && pid > 0 && (await isLivePostgres(pid))) {
    throw new DbError('DB_EMBEDDED_ALREADY_RUNNING', `PostgreSQL (pid ${pid}) is already running on ${dataDir}`, {
      details: { dataDir, pid },
    });
  }
  logger.warn({ dataDir, pid }, 'removing stale postmaster.pid left by a PostgreSQL that did not shut down');
  // We start postgres as a process group leader, so its backends share the group id `pid`.
  // When only the postmaster was killed they exit by themselves within moments; until they
  // have, PostgreSQL would refuse to start (their shared memory is still attached).
  if (Number.isInteger(pid) && pid > 0) await waitForGroupToExit(pid, 5_000);
  await unlink(pidFile).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err;
  });
}

async function waitForGroupToExit(pgid: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      process.kill(-pgid, 0);
    } catch {
      return;
    }
    await new Promise((done) => setTimeout(done, 50));
  }
}

/**
 * Runs a program to completion, its output going to `tail`; resolves with its exit code.
 *
 * @example
 * ```ts
 * const code = await runToExit(runner.command(initdb, args), tail);
 * ```
 */
export function runToExit(command: RunCommand, tail: LogTail): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(command.file, command.args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(command.uid === undefined ? {} : { uid: command.uid }),
      ...(command.gid === undefined ? {} : { gid: command.gid }),
    });
    child.stdout.on('data', tail.write);
    child.stderr.on('data', tail.write);
    child.once('error', reject);
    child.once('close', (code, signal) => resolve(code ?? (signal === null ? 1 : 128)));
  });
}

/** Sends `name` to the child unless it has already exited. */
export function signalProcess(child: ChildProcess, name: NodeJS.Signals): void {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  try {
    process.kill(child.pid, name);
  } catch {
    // Already gone.
  }
}

/** SIGKILL the whole group, so no backend outlives its postmaster. */
export function killGroup(child: ChildProcess): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    signalProcess(child, 'SIGKILL');
  }
}

/** Whether `promise` settles within `ms`. */
export async function settlesWithin(promise: Promise<void>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((done) => {
    timer = setTimeout(() => done(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true as const), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
