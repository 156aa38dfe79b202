import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { access, mkdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { resolvePostgresBinaries, type PostgresBinaries } from './embedded-binaries.js';
import {
  clearStalePidFile,
  createLogTail,
  findFreePort,
  killGroup,
  runToExit,
  settlesWithin,
  signalProcess,
} from './embedded-process.js';
import { EMBEDDED_ROLE, ensureDatabase, messageOf, waitUntilReady } from './embedded-probe.js';
import { resolveProcessRunner, type ProcessRunner, type RunAsStrategy } from './embedded-user.js';
import { DbError } from './errors.js';
import { assertDatabaseName } from './identifiers.js';
import { noopLogger, type DbLogger } from './logger.js';

/** Options of {@link EmbeddedPostgres}. */
export interface EmbeddedPostgresOptions {
  /** The cluster's directory; created and initialised on first start, reused afterwards. */
  dataDir: string;
  /** 0 or undefined: pick a free loopback port on every start. */
  port?: number;
  /** Created on start if missing. Default `'agora'`. */
  database?: string;
  logger?: DbLogger;
  /** Extra server settings, passed as `-c key=value` (tests turn `fsync` off, for example). */
  settings?: Readonly<Record<string, string | number | boolean>>;
  /** How to run PostgreSQL; `'auto'` (default) picks by uid. See {@link RunAsStrategy}. */
  runAs?: RunAsStrategy | 'auto';
  /** Give up starting after this long. Default 60 000. */
  startTimeoutMs?: number;
  /** Wait this long for a fast shutdown before SIGKILL. Default 15 000. */
  stopTimeoutMs?: number;
}

interface Running {
  child: ChildProcessByStdio<null, Readable, Readable>;
  port: number;
  exited: Promise<void>;
  onProcessExit: () => void;
  stopping: boolean;
}

const PORT_ATTEMPTS = 5;
// Startup failures caused by a port someone else took between our probe and postgres' bind.
const PORT_IN_USE = /could not bind|Address already in use/i;

/**
 * Supervises a private PostgreSQL server: `initdb` on first start, `postgres` on a loopback
 * port with no Unix socket, trust authentication for role `agora`, and an orderly stop.
 *
 * The server runs in its own process group, so a Ctrl-C in the terminal reaches only our
 * process, which can drain its work and then call {@link EmbeddedPostgres.stop}. As root it
 * runs in a user namespace or as the `postgres` user (PostgreSQL refuses root).
 *
 * @example
 * ```ts
 * const server = new EmbeddedPostgres({ dataDir: '.agora/pg', logger });
 * const { url } = await server.start(); // postgres://agora@127.0.0.1:41234/agora
 * process.once('SIGINT', async () => { await app.close(); await server.stop(); });
 * ```
 */
export class EmbeddedPostgres {
  readonly dataDir: string;
  readonly database: string;
  readonly #options: EmbeddedPostgresOptions;
  readonly #logger: DbLogger;
  #starting: Promise<{ url: string }> | undefined;
  #running: Running | undefined;

  constructor(options: EmbeddedPostgresOptions) {
    this.dataDir = resolve(options.dataDir);
    this.database = options.database ?? 'agora';
    assertDatabaseName(this.database);
    this.#options = options;
    this.#logger = options.logger ?? noopLogger;
  }

  /**
   * The connection URL of the running server.
   * @throws DbError `DB_EMBEDDED_NOT_RUNNING` if the server is not running.
   */
  get url(): string {
    if (this.#running === undefined) {
      throw new DbError('DB_EMBEDDED_NOT_RUNNING', 'embedded PostgreSQL is not running; call start() first', {
        details: { dataDir: this.dataDir },
      });
    }
    return this.#urlFor(this.#running.port, this.database);
  }

  /** Whether the server process is up. */
  get running(): boolean {
    return this.#running !== undefined;
  }

  /**
   * Starts the server (initialising the data directory if needed) and resolves once it accepts
   * connections and the database exists. Calling it again while started returns the same URL.
   * Fails with `DB_EMBEDDED_START_FAILED` (with the server's last log lines in `details.log`),
   * `DB_EMBEDDED_INIT_FAILED`, `DB_EMBEDDED_ALREADY_RUNNING` or `DB_EMBEDDED_BINARIES_MISSING`.
   */
  start(): Promise<{ url: string }> {
    this.#starting ??= this.#start().catch((err: unknown) => {
      this.#starting = undefined;
      throw err;
    });
    return this.#starting;
  }

  /**
   * Stops the server with a fast shutdown (SIGINT: disconnect clients, checkpoint, exit),
   * escalating to SIGKILL of its whole process group after `stopTimeoutMs`. Safe to call when
   * not running.
   */
  async stop(): Promise<void> {
    await this.#starting?.catch(() => undefined);
    if (this.#running !== undefined) await this.#halt(this.#running);
  }

  async #halt(running: Running): Promise<void> {
    const timeoutMs = this.#options.stopTimeoutMs ?? 15_000;
    running.stopping = true;
    signalProcess(running.child, 'SIGINT');
    if (!(await settlesWithin(running.exited, timeoutMs))) {
      this.#logger.warn({ dataDir: this.dataDir, timeoutMs }, 'PostgreSQL did not stop in time; killing it');
      killGroup(running.child);
      await running.exited;
    }
    this.#forget(running);
  }

  async #start(): Promise<{ url: string }> {
    const binaries = await resolvePostgresBinaries();
    const runner = await resolveProcessRunner(this.#options.runAs ?? 'auto', this.#logger);
    // Only the data dir itself is private (PostgreSQL insists); parents get the usual mode so
    // the postgres system user can traverse folders we create for it.
    await mkdir(dirname(this.dataDir), { recursive: true });
    await mkdir(this.dataDir, { mode: 0o700 }).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw err;
    });
    await runner.prepareDataDir(this.dataDir, [binaries.initdb, binaries.postgres]);
    if (!(await exists(join(this.dataDir, 'PG_VERSION')))) await this.#initdb(binaries, runner);
    await clearStalePidFile(this.dataDir, this.#logger);

    const running = await this.#launchOnSomePort(binaries, runner);
    this.#running = running;
    try {
      await ensureDatabase(running.port, this.database, this.#logger);
    } catch (err) {
      // Don't leave a server running whose URL the caller never got.
      await this.#halt(running);
      throw err;
    }
    this.#logger.info({ dataDir: this.dataDir, url: this.url, runAs: runner.strategy }, 'embedded PostgreSQL started');
    return { url: this.url };
  }

  async #launchOnSomePort(binaries: PostgresBinaries, runner: ProcessRunner): Promise<Running> {
    const fixedPort = this.#options.port !== undefined && this.#options.port !== 0;
    for (let attempt = 1; ; attempt++) {
      const port = fixedPort ? (this.#options.port ?? 0) : await findFreePort();
      try {
        return await this.#launch(binaries, runner, port);
      } catch (err) {
        const portTaken = err instanceof DbError && err.details.portInUse === true;
        if (!portTaken || fixedPort || attempt >= PORT_ATTEMPTS) throw err;
        this.#logger.info({ port, attempt }, 'port taken before PostgreSQL could bind it; trying another');
      }
    }
  }

  async #initdb(binaries: PostgresBinaries, runner: ProcessRunner): Promise<void> {
    const tail = createLogTail(this.#logger, 'initdb');
    // C.UTF-8 sorts by code point like C but knows UTF-8 character classes; some minimal
    // systems lack it, and initdb then fails (leaving the directory empty), so fall back to C.
    for (const locale of ['C.UTF-8', 'C']) {
      const args = ['-D', this.dataDir, '--auth=trust', '-U', EMBEDDED_ROLE, '-E', 'UTF8', `--locale=${locale}`, '--no-instructions'];
      const code = await runToExit(runner.command(binaries.initdb, args), tail);
      if (code === 0) {
        this.#logger.info({ dataDir: this.dataDir, locale }, 'initialised PostgreSQL data directory');
        return;
      }
    }
    throw new DbError('DB_EMBEDDED_INIT_FAILED', `initdb failed for ${this.dataDir}:\n${tail.lines().join('\n')}`, {
      details: { dataDir: this.dataDir, log: tail.lines() },
    });
  }

  async #launch(binaries: PostgresBinaries, runner: ProcessRunner, port: number): Promise<Running> {
    const settings = Object.entries(this.#options.settings ?? {}).flatMap(([key, value]) => ['-c', `${key}=${String(value)}`]);
    const command = runner.command(binaries.postgres, [
      '-D', this.dataDir,
      '-p', String(port),
      '-c', 'listen_addresses=127.0.0.1',
      // No Unix socket: nothing in /tmp to collide with another server or go stale.
      '-c', 'unix_socket_directories=',
      ...settings,
    ]);
    const tail = createLogTail(this.#logger, 'postgres');
    const child = spawn(command.file, command.args, {
      // Own process group: a terminal's Ctrl-C goes to our process only, which stops PG in order.
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(command.uid === undefined ? {} : { uid: command.uid }),
      ...(command.gid === undefined ? {} : { gid: command.gid }),
    });
    child.stdout.on('data', tail.write);
    child.stderr.on('data', tail.write);
    let exitedEarly = false;
    const exited = new Promise<void>((done) => {
      child.once('error', (err) => {
        tail.write(`spawn failed: ${err.message}\n`);
        exitedEarly = true;
        done();
      });
      child.once('exit', () => {
        exitedEarly = true;
        done();
      });
    });

    try {
      await waitUntilReady({
        port,
        dataDir: this.dataDir,
        exited,
        hasExited: () => exitedEarly,
        timeoutMs: this.#options.startTimeoutMs ?? 60_000,
      });
    } catch (err) {
      killGroup(child);
      await settlesWithin(exited, 5_000);
      const log = tail.lines();
      throw new DbError('DB_EMBEDDED_START_FAILED', `PostgreSQL did not start on port ${port}: ${messageOf(err)}\n${log.join('\n')}`, {
        details: { dataDir: this.dataDir, port, log, portInUse: log.some((line) => PORT_IN_USE.test(line)) },
        cause: err,
      });
    }

    // Unlike a signal hook this does not stop the process from draining first: it only runs
    // when the process exits without having called stop(), and then stops PG instead of
    // leaving an orphan holding the data directory.
    const onProcessExit = (): void => signalProcess(child, 'SIGINT');
    process.once('exit', onProcessExit);
    const running: Running = { child, port, exited, onProcessExit, stopping: false };
    void exited.then(() => {
      if (this.#running !== running || running.stopping) return;
      this.#logger.error({ dataDir: this.dataDir, log: tail.lines() }, 'embedded PostgreSQL exited unexpectedly');
      this.#forget(running);
    });
    return running;
  }

  #forget(running: Running): void {
    process.removeListener('exit', running.onProcessExit);
    if (this.#running === running) {
      this.#running = undefined;
      this.#starting = undefined;
    }
  }

  #urlFor(port: number, database: string): string {
    return `postgres://${EMBEDDED_ROLE}@127.0.0.1:${port}/${database}`;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}
