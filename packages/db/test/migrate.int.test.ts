import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { createPool, migrate } from '../src/index.js';
import { createTestDatabase, type TestDatabase } from '../src/testing.js';
import { migration, uniqueSchema } from './helpers.js';

const init = migration(1, 'init', 'create table users (id bigint primary key, handle text not null unique);');
const posts = migration(2, 'posts', 'create table posts (id bigint primary key, author_id bigint not null references users (id));');
const seed = migration(3, 'seed', "insert into users (id, handle) values (1, 'root');");

describe('migrate', () => {
  let db: TestDatabase;
  let pool: pg.Pool;

  beforeAll(async () => {
    db = await createTestDatabase(inject('databaseUrl'));
    pool = createPool({ url: db.url, max: 4 });
  });

  afterAll(async () => {
    await pool?.end();
    await db?.drop();
  });

  const tablesOf = async (schema: string): Promise<string[]> => {
    const { rows } = await pool.query<{ table_name: string }>(
      'select table_name from information_schema.tables where table_schema = $1 order by table_name',
      [schema],
    );
    return rows.map((row) => row.table_name);
  };

  it('creates the schema and applies every migration in order', async () => {
    const schema = uniqueSchema();
    const result = await migrate(pool, { schema, migrations: [posts, init] });
    expect(result.applied).toEqual(['0001_init', '0002_posts']);
    expect(await tablesOf(schema)).toEqual(['posts', 'schema_migrations', 'users']);
    const { rows } = await pool.query(`select version, name, checksum from ${schema}.schema_migrations order by version`);
    expect(rows).toEqual([
      { version: 1, name: 'init', checksum: init.checksum },
      { version: 2, name: 'posts', checksum: posts.checksum },
    ]);
  });

  it('applies nothing when run again, and only new migrations later', async () => {
    const schema = uniqueSchema();
    await migrate(pool, { schema, migrations: [init, posts] });
    expect((await migrate(pool, { schema, migrations: [init, posts] })).applied).toEqual([]);
    expect((await migrate(pool, { schema, migrations: [init, posts, seed] })).applied).toEqual(['0003_seed']);
    const { rows } = await pool.query(`select handle from ${schema}.users`);
    expect(rows).toEqual([{ handle: 'root' }]);
  });

  it('fails with DB_MIGRATION_CHECKSUM_MISMATCH when an applied migration was edited', async () => {
    const schema = uniqueSchema();
    await migrate(pool, { schema, migrations: [init] });
    const edited = migration(1, 'init', `${init.sql}\ncreate index on users (handle);`);
    await expect(migrate(pool, { schema, migrations: [edited, posts] })).rejects.toMatchObject({
      code: 'DB_MIGRATION_CHECKSUM_MISMATCH',
      details: expect.objectContaining({ schema, version: 1 }),
    });
    expect(await tablesOf(schema)).toEqual(['schema_migrations', 'users']);
  });

  it('fails with DB_MIGRATION_NEWER_SCHEMA when the database is ahead of the code', async () => {
    const schema = uniqueSchema();
    await migrate(pool, { schema, migrations: [init, posts] });
    await expect(migrate(pool, { schema, migrations: [init] })).rejects.toMatchObject({
      code: 'DB_MIGRATION_NEWER_SCHEMA',
      details: expect.objectContaining({ version: 2, known: 1 }),
    });
  });

  it('rolls back a failing migration whole and keeps the ones before it', async () => {
    const schema = uniqueSchema();
    const broken = migration(2, 'broken', 'create table half (id int); select * from no_such_table;');
    const err: unknown = await migrate(pool, { schema, migrations: [init, broken] }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'DB_MIGRATION_FAILED', details: expect.objectContaining({ version: 2 }) });
    expect((err as Error).cause).toMatchObject({ code: '42P01' });
    expect(await tablesOf(schema)).toEqual(['schema_migrations', 'users']);
    expect(pool.idleCount).toBe(pool.totalCount);
  });

  it('applies each migration exactly once when five processes migrate at once', async () => {
    const schema = uniqueSchema();
    const counted = [
      migration(1, 'runs', 'create table runs (migration int not null);'),
      migration(2, 'second', 'insert into runs values (2); select pg_sleep(0.05);'),
      migration(3, 'third', 'insert into runs values (3);'),
    ];
    const pools = Array.from({ length: 5 }, () => createPool({ url: db.url, max: 1 }));
    try {
      const results = await Promise.all(pools.map((p) => migrate(p, { schema, migrations: counted })));
      expect(results.flatMap((r) => r.applied).sort()).toEqual(['0001_runs', '0002_second', '0003_third']);
      const { rows } = await pool.query(`select migration from ${schema}.runs order by migration`);
      expect(rows).toEqual([{ migration: 2 }, { migration: 3 }]);
    } finally {
      await Promise.all(pools.map((p) => p.end()));
    }
  });

  it('keeps schemas apart: a pool for one schema cannot see the other by unqualified name', async () => {
    const a = uniqueSchema('a');
    const b = uniqueSchema('b');
    await migrate(pool, { schema: a, migrations: [migration(1, 'items', 'create table items (label text);')] });
    await migrate(pool, {
      schema: b,
      migrations: [migration(1, 'items', 'create table items (label text); create table only_in_b (id int);')],
    });
    const poolA = createPool({ url: db.url, schema: a, max: 1 });
    const poolB = createPool({ url: db.url, schema: b, max: 1 });
    try {
      await poolA.query("insert into items values ('from a')");
      await poolB.query("insert into items values ('from b')");
      expect((await poolA.query('select label from items')).rows).toEqual([{ label: 'from a' }]);
      expect((await poolB.query('select label from items')).rows).toEqual([{ label: 'from b' }]);
      await expect(poolA.query('select * from only_in_b')).rejects.toMatchObject({ code: '42P01' });
    } finally {
      await poolA.end();
      await poolB.end();
    }
  });

  it('rejects an unsafe schema name before touching the database', async () => {
    await expect(migrate(pool, { schema: 'x; drop schema public', migrations: [init] })).rejects.toMatchObject({
      code: 'DB_INVALID_SCHEMA_NAME',
    });
  });
});
