import { execFile, spawn } from 'node:child_process';
import { lchown, lstat, readdir, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { DbError } from './errors.js';
import type { DbLogger } from './logger.js';

const execFileAsync = promisify(execFile);

/**
 * How PostgreSQL programs are run. PostgreSQL refuses to run as root, and everything on a dev
 * box or CI runner may well run as root, so as root we either run it in a user namespace or
 * as the `postgres` system user.
 *
 * - `direct`: not root; run the binaries as they are.
 * - `user-namespace`: root; run them under `unshare --user --map-user=1000 --map-group=1000`.
 *   Inside, PostgreSQL sees uid 1000 owning its files; outside it keeps root's file access, so
 *   a data dir below a 0700 root-owned folder works and files stay owned by root. unshare
 *   execs the binary without forking, so the child pid is postgres itself and signals reach it.
 * - `system-user`: root without user namespaces (some container runtimes forbid them); run as
 *   a `postgres` system user, created if missing, owning the data dir.
 */
export type RunAsStrategy = 'direct' | 'user-namespace' | 'system-user';

/** A command line ready for `spawn`. */
export interface RunCommand {
  file: string;
  args: string[];
  uid?: number;
  gid?: number;
}

/** Runs PostgreSQL programs as a user PostgreSQL accepts; see {@link RunAsStrategy}. */
export interface ProcessRunner {
  readonly strategy: RunAsStrategy;
  /** Makes `dataDir` (which exists) usable by the user the programs run as. */
  prepareDataDir(dataDir: string, binaries: readonly string[]): Promise<void>;
  command(binary: string, args: readonly string[]): RunCommand;
}

const NAMESPACE_ID = 1000;
const NAMESPACE_PREFIX = ['--user', `--map-user=${NAMESPACE_ID}`, `--map-group=${NAMESPACE_ID}`];

/**
 * Picks how to run PostgreSQL on this machine: `direct` unless root, then `user-namespace` if
 * unshare works, else `system-user`. `preferred` forces a strategy (tests use it to exercise
 * the fallback); `'auto'` or undefined detects.
 *
 * @example
 * ```ts
 * const runner = await resolveProcessRunner('auto', logger);
 * const { file, args, uid, gid } = runner.command(initdb, ['-D', dataDir]);
 * ```
 */
export async function resolveProcessRunner(preferred: RunAsStrategy | 'auto' = 'auto', logger?: DbLogger): Promise<ProcessRunner> {
  const strategy = preferred === 'auto' ? await detectStrategy() : preferred;
  logger?.debug({ strategy }, 'embedded PostgreSQL run-as strategy');
  switch (strategy) {
    case 'direct':
      return directRunner;
    case 'user-namespace':
      return userNamespaceRunner;
    case 'system-user':
      return createSystemUserRunner(await ensurePostgresUser(logger));
  }
}

// The probe spawns a process; its answer cannot change while we run, so ask once.
let namespaceProbe: Promise<boolean> | undefined;

async function detectStrategy(): Promise<RunAsStrategy> {
  if (process.getuid?.() !== 0) return 'direct';
  namespaceProbe ??= probeUserNamespace();
  return (await namespaceProbe) ? 'user-namespace' : 'system-user';
}

function probeUserNamespace(): Promise<boolean> {
  return new Promise((resolve) => {
    const child = spawn('unshare', [...NAMESPACE_PREFIX, 'true'], { stdio: 'ignore', timeout: 5_000 });
    child.on('error', () => resolve(false));
    child.on('exit', (code) => resolve(code === 0));
  });
}

const directRunner: ProcessRunner = {
  strategy: 'direct',
  prepareDataDir: async () => undefined,
  command: (binary, args) => ({ file: binary, args: [...args] }),
};

const userNamespaceRunner: ProcessRunner = {
  strategy: 'user-namespace',
  prepareDataDir: async () => undefined,
  command: (binary, args) => ({ file: 'unshare', args: [...NAMESPACE_PREFIX, binary, ...args] }),
};

interface SystemUser {
  uid: number;
  gid: number;
}

async function ensurePostgresUser(logger: DbLogger | undefined): Promise<SystemUser> {
  const lookup = async (): Promise<SystemUser> => {
    const uid = await execFileAsync('id', ['-u', 'postgres']);
    const gid = await execFileAsync('id', ['-g', 'postgres']);
    return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
  };
  try {
    return await lookup();
  } catch {
    logger?.info('creating the postgres system user to run embedded PostgreSQL as');
    await execFileAsync('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', 'postgres']);
    return lookup();
  }
}

function createSystemUserRunner(user: SystemUser): ProcessRunner {
  return {
    strategy: 'system-user',
    async prepareDataDir(dataDir, binaries) {
      const blocked = [
        ...(await unreachableAncestors(dataDir, user)),
        ...(await Promise.all(binaries.map((binary) => unreachableAncestors(binary, user)))).flat(),
      ];
      if (blocked.length > 0) {
        throw new DbError(
          'DB_EMBEDDED_DATA_DIR_INACCESSIBLE',
          `running as root without user namespaces, so PostgreSQL runs as the postgres user (uid ${user.uid}), ` +
            `which cannot enter ${[...new Set(blocked)].join(', ')}. Set AGORA_DATA_DIR to a path that user can reach ` +
            '(for example under /var/lib/agora), or allow unprivileged user namespaces.',
          { details: { dataDir, uid: user.uid, blocked: [...new Set(blocked)] } },
        );
      }
      await chownRecursive(dataDir, user);
    },
    command: (binary, args) => ({ file: binary, args: [...args], uid: user.uid, gid: user.gid }),
  };
}

/** Ancestors of `path` that `user` may not search (no x bit for it). */
async function unreachableAncestors(path: string, user: SystemUser): Promise<string[]> {
  const blocked: string[] = [];
  for (let dir = dirname(path); ; dir = dirname(dir)) {
    const info = await stat(dir);
    const bit = info.uid === user.uid ? 0o100 : info.gid === user.gid ? 0o010 : 0o001;
    if ((info.mode & bit) === 0) blocked.push(dir);
    if (dirname(dir) === dir) return blocked;
  }
}

async function chownRecursive(path: string, user: SystemUser): Promise<void> {
  // lstat/lchown: a symlink in the data dir must not hand its target to the postgres user.
  await lchown(path, user.uid, user.gid);
  const info = await lstat(path);
  if (!info.isDirectory()) return;
  for (const entry of await readdir(path)) {
    await chownRecursive(join(path, entry), user);
  }
}
