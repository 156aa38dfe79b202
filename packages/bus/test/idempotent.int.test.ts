import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createPool } from '@agora/db';
import { createTestDatabase, type TestDatabase } from '@agora/db/testing';
import { memoryDedupStore, postgresDedupStore, type DedupStore } from '../src/idempotent.js';

let db: TestDatabase;
let pool: pg.Pool;

beforeAll(async () => {
  db = await createTestDatabase(inject('databaseUrl'));
  pool = createPool({ url: db.url, max: 25 });
  await pool.query('CREATE SCHEMA feed');
  await pool.query('CREATE TABLE feed.effects (message_id text NOT NULL)');
});

afterAll(async () => {
  await pool.end();
  await db.drop();
});

/**
 * What both stores promise, given a store and an effect that records its run (in the
 * store's transaction for PostgreSQL) and a way to count what the effect left behind.
 */
interface Harness<Tx> {
  store: DedupStore<Tx>;
  /** Records one run of the effect for `id`, in `tx` where the store has one. */
  record(tx: Tx, id: string): Promise<void>;
  /** How many runs of the effect for `id` took effect (committed). */
  count(id: string): Promise<number>;
}

function dedupContract<Tx>(name: string, harness: () => Harness<Tx>): void {
  describe(`${name} dedup store`, () => {
    it('runs the effect once; a duplicate resolves false without running it', async () => {
      const { store, record, count } = harness();
      const id = randomUUID();
      let runs = 0;
      const effect = async (tx: Tx) => {
        runs++;
        await record(tx, id);
      };
      expect(await store.once('g', id, effect)).toBe(true);
      expect(await store.once('g', id, effect)).toBe(false);
      expect(runs).toBe(1);
      expect(await count(id)).toBe(1);
    });

    it('keeps groups apart: the same message id is new to another group', async () => {
      const { store } = harness();
      const id = randomUUID();
      expect(await store.once('a', id, async () => undefined)).toBe(true);
      expect(await store.once('b', id, async () => undefined)).toBe(true);
      expect(await store.once('a', id, async () => undefined)).toBe(false);
    });

    it('leaves no mark when the effect throws, so the redelivery runs it again', async () => {
      // (Undoing the effect's own writes needs a transaction: see the postgres-only tests.)
      const { store, record, count } = harness();
      const id = randomUUID();
      let runs = 0;
      await expect(
        store.once('g', id, async () => {
          runs++;
          throw new Error('handler failed');
        }),
      ).rejects.toThrow('handler failed');
      expect(
        await store.once('g', id, async (tx) => {
          runs++;
          await record(tx, id);
        }),
      ).toBe(true);
      expect(runs).toBe(2);
      expect(await count(id)).toBe(1);
      expect(await store.once('g', id, async () => void runs++)).toBe(false);
    });

    it('runs the effect exactly once for 20 concurrent calls with one id', async () => {
      const { store, record, count } = harness();
      const id = randomUUID();
      let runs = 0;
      const results = await Promise.all(
        Array.from({ length: 20 }, () =>
          store.once('g', id, async (tx) => {
            runs++;
            await new Promise((resolve) => setTimeout(resolve, 10)); // hold the mark while the others arrive
            await record(tx, id);
          }),
        ),
      );
      expect(results.filter(Boolean)).toHaveLength(1);
      expect(runs).toBe(1);
      expect(await count(id)).toBe(1);
    });

    it('lets a waiting duplicate run the effect when the first attempt fails', async () => {
      const { store, record, count } = harness();
      const id = randomUUID();
      let began!: () => void;
      const firstHasTheMark = new Promise<void>((resolve) => (began = resolve));
      const first = store.once('g', id, async () => {
        began();
        await new Promise((resolve) => setTimeout(resolve, 30));
        throw new Error('first failed');
      });
      // Only once the first attempt holds the id: then the second waits on it, and runs after it fails.
      await firstHasTheMark;
      const second = store.once('g', id, (tx) => record(tx, id));
      await expect(first).rejects.toThrow('first failed');
      expect(await second).toBe(true);
      expect(await count(id)).toBe(1);
    });
  });
}

dedupContract<pg.PoolClient>('postgres', () => ({
  store: postgresDedupStore(pool, 'feed'),
  record: async (tx, id) => void (await tx.query('INSERT INTO feed.effects (message_id) VALUES ($1)', [id])),
  count: async (id) => (await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM feed.effects WHERE message_id = $1', [id])).rows[0]?.n ?? 0,
}));

dedupContract<undefined>('memory', () => {
  const effects: string[] = [];
  return {
    store: memoryDedupStore(),
    record: async (_tx, id) => void effects.push(id),
    count: async (id) => effects.filter((e) => e === id).length,
  };
});

describe('postgres dedup store: the mark and the effect commit together', () => {
  it('rolls back the effect\'s writes with the mark', async () => {
    const store = postgresDedupStore(pool, 'feed');
    const id = randomUUID();
    await expect(
      store.once('g', id, async (tx) => {
        await tx.query('INSERT INTO feed.effects (message_id) VALUES ($1)', [id]);
        throw new Error('after the write');
      }),
    ).rejects.toThrow('after the write');
    const effects = await pool.query('SELECT 1 FROM feed.effects WHERE message_id = $1', [id]);
    const marks = await pool.query('SELECT 1 FROM feed.processed_messages WHERE message_id = $1', [id]);
    expect(effects.rowCount).toBe(0);
    expect(marks.rowCount).toBe(0);
  });

  it('tries to create its table again after a failed first attempt', async () => {
    const schema = `s_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
    const store = postgresDedupStore(pool, schema);
    await expect(store.ensureTable()).rejects.toThrow(); // the schema does not exist yet
    await pool.query(`CREATE SCHEMA ${schema}`);
    expect(await store.once('g', 'm1', async () => undefined)).toBe(true);
  });
});

describe('postgres dedup store: table creation', () => {
  it('creates its table once when many processes start at the same moment', async () => {
    // Separate stores stand for separate processes: each runs its own CREATE TABLE IF NOT EXISTS.
    const schema = `race_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
    await pool.query(`CREATE SCHEMA ${schema}`);
    const pools = Array.from({ length: 8 }, () => createPool({ url: db.url, max: 1 }));
    try {
      // Connected first, so that the CREATE statements reach the server together.
      await Promise.all(pools.map((p) => p.query('SELECT 1')));
      const stores = pools.map((p) => postgresDedupStore(p, schema));
      await expect(Promise.all(stores.map((s) => s.ensureTable()))).resolves.toHaveLength(8);
    } finally {
      await Promise.all(pools.map((p) => p.end()));
    }
  });
});
