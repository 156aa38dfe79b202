import { chmod, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { EmbeddedPostgres, type EmbeddedPostgresOptions } from '../src/index.js';
import { resolvePostgresBinaries } from '../src/embedded-binaries.js';
import { findFreePort } from '../src/embedded-process.js';

const isRoot = process.getuid?.() === 0;
// Skipping fsync loses nothing when only processes die (the OS keeps the page cache), and
// makes initdb-heavy tests faster. synchronous_commit stays on: the crash test needs commits
// to be in the WAL before postgres is killed.
const settings = { fsync: 'off' };

/** Pids of live processes whose command line mentions `dataDir`. */
async function processesUsing(dataDir: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes(dataDir)) pids.push(Number(entry));
  }
  return pids;
}

async function query(url: string, sql: string): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await client.query(sql);
  } finally {
    await client.end();
  }
}

/** Folders above `path` that a user other than their owner and group may not enter. */
async function ancestorsClosedToOthers(path: string): Promise<string[]> {
  const blocked: string[] = [];
  for (let dir = dirname(path); ; dir = dirname(dir)) {
    if (((await stat(dir)).mode & 0o001) === 0) blocked.push(dir);
    if (dirname(dir) === dir) return blocked;
  }
}

describe('EmbeddedPostgres', () => {
  const cleanups: (() => Promise<void>)[] = [];

  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  const server = async (options: Partial<EmbeddedPostgresOptions> = {}, parentMode?: number) => {
    const parent = await mkdtemp(join(tmpdir(), 'agora-embedded-'));
    if (parentMode !== undefined) await chmod(parent, parentMode);
    const instance = new EmbeddedPostgres({ dataDir: join(parent, 'repo', '.agora', 'pg'), settings, ...options });
    cleanups.push(async () => {
      await instance.stop();
      await rm(parent, { recursive: true, force: true });
    });
    return instance;
  };

  it('keeps its data across a stop and a start on another port, and leaves no process behind', async () => {
    const pg1 = await server();
    const first = await pg1.start();
    expect(first.url).toMatch(/^postgres:\/\/agora@127\.0\.0\.1:\d+\/agora$/);
    expect(pg1.url).toBe(first.url);
    await query(first.url, "create table kept (note text); insert into kept values ('still here')");
    await pg1.stop();
    expect(pg1.running).toBe(false);
    expect(await processesUsing(pg1.dataDir)).toEqual([]);

    const firstPort = Number(new URL(first.url).port);
    let port = await findFreePort();
    while (port === firstPort) port = await findFreePort();
    const pg2 = new EmbeddedPostgres({ dataDir: pg1.dataDir, port, settings });
    const second = await pg2.start();
    expect(Number(new URL(second.url).port)).toBe(port);
    expect((await query(second.url, 'select note from kept')).rows).toEqual([{ note: 'still here' }]);
    await pg2.stop();
    expect(await processesUsing(pg1.dataDir)).toEqual([]);
  });

  it('recovers from a stale postmaster.pid left by a SIGKILLed server', async () => {
    const instance = await server({ database: 'crash_test' });
    const { url } = await instance.start();
    await query(url, 'create table survived (id int); insert into survived values (1)');
    const pid = Number((await readFile(join(instance.dataDir, 'postmaster.pid'), 'utf8')).split('\n')[0]);
    process.kill(pid, 'SIGKILL');
    await expect.poll(() => instance.running, { timeout: 10_000 }).toBe(false);
    expect((await readFile(join(instance.dataDir, 'postmaster.pid'), 'utf8')).startsWith(`${pid}\n`)).toBe(true);

    const restarted = await instance.start();
    expect((await query(restarted.url, 'select id from survived')).rows).toEqual([{ id: 1 }]);
  });

  it('refuses a second server on a data directory that is in use', async () => {
    const instance = await server();
    await instance.start();
    const twin = new EmbeddedPostgres({ dataDir: instance.dataDir, settings });
    await expect(twin.start()).rejects.toMatchObject({ code: 'DB_EMBEDDED_ALREADY_RUNNING' });
  });

  it('fails with DB_EMBEDDED_START_FAILED and the server log when its fixed port is taken', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise((resolve) => blocker.close(() => resolve())));
    const address = blocker.address();
    const port = typeof address === 'object' && address !== null ? address.port : 0;
    blocker.on('connection', (socket) => socket.destroy());
    const instance = await server({ port });
    const err: unknown = await instance.start().catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'DB_EMBEDDED_START_FAILED', details: expect.objectContaining({ port, portInUse: true }) });
    expect(await processesUsing(instance.dataDir)).toEqual([]);
  });

  it('reports DB_EMBEDDED_NOT_RUNNING for the URL of a server that is not running', async () => {
    const instance = await server();
    expect(() => instance.url).toThrow(expect.objectContaining({ code: 'DB_EMBEDDED_NOT_RUNNING' }));
    await instance.stop();
  });

  it.runIf(isRoot)('as root, runs in a user namespace even below a 0700 root-owned folder', async () => {
    const instance = await server({ runAs: 'user-namespace' }, 0o700);
    const { url } = await instance.start();
    expect((await query(url, 'select current_user as u')).rows).toEqual([{ u: 'agora' }]);
  });

  it.runIf(isRoot)('as root without namespaces, explains a data dir the postgres user cannot reach', async () => {
    const instance = await server({ runAs: 'system-user' }, 0o700);
    await expect(instance.start()).rejects.toMatchObject({ code: 'DB_EMBEDDED_DATA_DIR_INACCESSIBLE' });
  });

  it.runIf(isRoot)('as root without namespaces, runs as the postgres user where it can reach data and binaries', async () => {
    const instance = await server({ runAs: 'system-user' }, 0o755);
    // The binaries live in this checkout's node_modules: a clone under a private folder (as a
    // fresh clone in mktemp -d is) puts them out of the postgres user's reach too.
    const { postgres } = await resolvePostgresBinaries();
    const blocked = await ancestorsClosedToOthers(postgres);
    if (blocked.length > 0) {
      await expect(instance.start()).rejects.toMatchObject({
        code: 'DB_EMBEDDED_DATA_DIR_INACCESSIBLE',
        details: expect.objectContaining({ blocked: expect.arrayContaining(blocked) }),
      });
      return;
    }
    const { url } = await instance.start();
    expect((await query(url, 'select 1 as ok')).rows).toEqual([{ ok: 1 }]);
    await instance.stop();
    expect(await processesUsing(instance.dataDir)).toEqual([]);
  });
});
