import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { createPool, migrate, pingDatabase, poolStats } from '../src/index.js';
import { createTestDatabase, type TestDatabase } from '../src/testing.js';
import { migration, recordingLogger, uniqueSchema } from './helpers.js';

describe('createPool', () => {
  let db: TestDatabase;
  const pools: pg.Pool[] = [];
  const track = (pool: pg.Pool): pg.Pool => {
    pools.push(pool);
    return pool;
  };

  beforeAll(async () => {
    db = await createTestDatabase(inject('databaseUrl'));
  });

  afterAll(async () => {
    await Promise.all(pools.map((pool) => pool.end()));
    await db?.drop();
  });

  it('sets search_path to the schema on every connection', async () => {
    const schema = uniqueSchema();
    const pool = track(createPool({ url: db.url, schema, max: 3 }));
    await migrate(pool, { schema, migrations: [migration(1, 'notes', 'create table notes (body text);')] });
    const clients = await Promise.all([pool.connect(), pool.connect(), pool.connect()]);
    try {
      for (const client of clients) {
        expect((await client.query('show search_path')).rows[0]).toEqual({ search_path: schema });
        await client.query("insert into notes values ('unqualified')");
      }
    } finally {
      clients.forEach((client) => client.release());
    }
    expect((await pool.query(`select count(*)::int as n from ${schema}.notes`)).rows[0]).toEqual({ n: 3 });
  });

  it('applies the statement timeout and application name', async () => {
    const pool = track(createPool({ url: db.url, statementTimeoutMs: 100, applicationName: 'pool-test' }));
    await expect(pool.query('select pg_sleep(2)')).rejects.toMatchObject({ code: '57014' });
    const { rows } = await pool.query("select current_setting('application_name') as name");
    expect(rows[0]).toEqual({ name: 'pool-test' });
  });

  it('keeps options given in the URL alongside its own', async () => {
    const schema = uniqueSchema();
    const url = new URL(db.url);
    url.searchParams.set('options', '-c work_mem=8MB');
    const pool = track(createPool({ url: url.toString(), schema }));
    const { rows } = await pool.query("select current_setting('work_mem') as w, current_setting('search_path') as s");
    expect(rows[0]).toEqual({ w: '8MB', s: schema });
  });

  it('reports connection counts for gauges', async () => {
    const pool = track(createPool({ url: db.url, max: 4 }));
    expect(poolStats(pool)).toEqual({ total: 0, idle: 0, waiting: 0, max: 4 });
    const client = await pool.connect();
    expect(poolStats(pool)).toMatchObject({ total: 1, idle: 0 });
    client.release();
    expect(poolStats(pool)).toMatchObject({ total: 1, idle: 1, waiting: 0 });
  });

  it('logs instead of crashing when an idle connection dies', async () => {
    const logger = recordingLogger();
    const pool = track(createPool({ url: db.url, max: 1, applicationName: 'doomed', logger }));
    await pool.query('select 1');
    const killer = track(createPool({ url: db.url, max: 1 }));
    await killer.query("select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'doomed'");
    await expect.poll(() => logger.entries.filter((entry) => entry.level === 'error').length).toBe(1);
    expect((await pool.query('select 1 as ok')).rows[0]).toEqual({ ok: 1 });
  });
});

describe('pingDatabase', () => {
  let db: TestDatabase;

  beforeAll(async () => {
    db = await createTestDatabase(inject('databaseUrl'));
  });

  afterAll(async () => {
    await db?.drop();
  });

  it('answers with the round trip time when the database is up', async () => {
    const pool = createPool({ url: db.url });
    try {
      const { latencyMs } = await pingDatabase(pool);
      expect(latencyMs).toBeGreaterThanOrEqual(0);
      expect(poolStats(pool).idle).toBe(poolStats(pool).total);
    } finally {
      await pool.end();
    }
  });

  it('fails with DB_PING_TIMEOUT when no connection frees up in time, then gives it back', async () => {
    const pool = createPool({ url: db.url, max: 1 });
    try {
      const held = await pool.connect();
      await expect(pingDatabase(pool, undefined, { timeoutMs: 150 })).rejects.toMatchObject({ code: 'DB_PING_TIMEOUT' });
      held.release();
      await expect.poll(() => poolStats(pool)).toMatchObject({ total: 1, idle: 1, waiting: 0 });
    } finally {
      await pool.end();
    }
  });

  it('fails with DB_ABORTED when its signal fires', async () => {
    const pool = createPool({ url: db.url, max: 1 });
    try {
      const held = await pool.connect();
      const controller = new AbortController();
      const ping = pingDatabase(pool, controller.signal, { timeoutMs: 5_000 });
      controller.abort();
      await expect(ping).rejects.toMatchObject({ code: 'DB_ABORTED' });
      held.release();
      await expect(pingDatabase(pool, AbortSignal.abort())).rejects.toMatchObject({ code: 'DB_ABORTED' });
    } finally {
      await pool.end();
    }
  });

  it('rejects when the server is unreachable', async () => {
    const pool = createPool({ url: 'postgres://agora@127.0.0.1:1/agora', connectionTimeoutMs: 500 });
    try {
      await expect(pingDatabase(pool, undefined, { timeoutMs: 2_000 })).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    } finally {
      await pool.end();
    }
  });
});
