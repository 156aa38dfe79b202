import type pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it, inject } from 'vitest';
import { createPool, migrate, poolStats, withTransaction, type Queryable, type TransactionRetry } from '../src/index.js';
import { createTestDatabase, type TestDatabase } from '../src/testing.js';
import { migration, uniqueSchema } from './helpers.js';

/** Resolves for everyone once `parties` callers have arrived; later callers pass straight through. */
function barrier(parties: number): () => Promise<void> {
  let arrived = 0;
  let open!: () => void;
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return () => {
    arrived += 1;
    if (arrived >= parties) open();
    return opened;
  };
}

async function countLedger(db: Queryable): Promise<number> {
  const { rows } = await db.query<{ n: number }>('select count(*)::int as n from ledger');
  return rows[0]?.n ?? 0;
}

describe('withTransaction', () => {
  let db: TestDatabase;
  let pool: pg.Pool;

  beforeAll(async () => {
    db = await createTestDatabase(inject('databaseUrl'));
    const schema = uniqueSchema();
    pool = createPool({ url: db.url, schema, max: 5 });
    await migrate(pool, {
      schema,
      migrations: [migration(1, 'ledger', 'create table ledger (entry int primary key, writer text not null);')],
    });
  });

  beforeEach(async () => {
    await pool.query('truncate ledger');
  });

  afterAll(async () => {
    await pool?.end();
    await db?.drop();
  });

  const expectAllReleased = (): void => {
    const stats = poolStats(pool);
    expect(stats.idle).toBe(stats.total);
    expect(stats.waiting).toBe(0);
  };

  it('commits and returns what the function returns', async () => {
    const result = await withTransaction(pool, async (tx) => {
      await tx.query("insert into ledger values (1, 'a')");
      return 'done';
    });
    expect(result).toBe('done');
    expect(await countLedger(pool)).toBe(1);
    expectAllReleased();
  });

  it('rolls back and rethrows the same error when the function throws', async () => {
    const failure = new Error('boom');
    await expect(
      withTransaction(pool, async (tx) => {
        await tx.query("insert into ledger values (1, 'a')");
        throw failure;
      }),
    ).rejects.toBe(failure);
    expect(await countLedger(pool)).toBe(0);
    expectAllReleased();
  });

  it('rolls back when a statement fails', async () => {
    await expect(
      withTransaction(pool, async (tx) => {
        await tx.query("insert into ledger values (1, 'a')");
        await tx.query("insert into ledger values (1, 'again')");
      }),
    ).rejects.toMatchObject({ code: '23505' });
    expect(await countLedger(pool)).toBe(0);
    expectAllReleased();
  });

  it('retries the loser of a serializable conflict so both effects land', async () => {
    const bothRead = barrier(2);
    const retries: TransactionRetry[] = [];
    // Each appends entry count+1 after reading the count: a write skew SERIALIZABLE must refuse.
    const append = (writer: string) =>
      withTransaction(
        pool,
        async (tx) => {
          const n = await countLedger(tx);
          await bothRead();
          await tx.query('insert into ledger values ($1, $2)', [n + 100, writer]);
        },
        { isolation: 'serializable', onRetry: (retry) => retries.push(retry) },
      );
    await Promise.all([append('a'), append('b')]);
    const { rows } = await pool.query('select entry, writer from ledger order by entry');
    expect(rows.map((row) => row.entry)).toEqual([100, 101]);
    expect(rows.map((row) => row.writer).sort()).toEqual(['a', 'b']);
    expect(retries.length).toBeGreaterThanOrEqual(1);
    expect(retries[0]?.error).toMatchObject({ code: '40001' });
    expectAllReleased();
  });

  it('gives up with the serialization failure when no retries are allowed', async () => {
    const bothRead = barrier(2);
    const append = (writer: string) =>
      withTransaction(
        pool,
        async (tx) => {
          const n = await countLedger(tx);
          await bothRead();
          await tx.query('insert into ledger values ($1, $2)', [n + 100, writer]);
        },
        { isolation: 'serializable', retries: 0 },
      );
    const outcomes = await Promise.allSettled([append('a'), append('b')]);
    const failed = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
    expect(failed).toHaveLength(1);
    expect(failed[0]?.reason).toMatchObject({ code: '40001' });
    expect(await countLedger(pool)).toBe(1);
    expectAllReleased();
  });

  it('refuses writes in a read-only transaction', async () => {
    await expect(
      withTransaction(pool, (tx) => tx.query("insert into ledger values (1, 'a')"), { readOnly: true }),
    ).rejects.toMatchObject({ code: '25006' });
    expectAllReleased();
  });

  it('runs at the requested isolation level', async () => {
    const level = await withTransaction(
      pool,
      async (tx) => (await tx.query<{ l: string }>('select current_setting($1) as l', ['transaction_isolation'])).rows[0]?.l,
      { isolation: 'repeatable read' },
    );
    expect(level).toBe('repeatable read');
  });

  it('releases every client after many concurrent transactions, failing or not', async () => {
    await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) =>
        withTransaction(pool, async (tx) => {
          await tx.query('insert into ledger values ($1, $2)', [i, 'x']);
          if (i % 3 === 0) throw new Error('fail some');
        }),
      ),
    );
    expect(await countLedger(pool)).toBe(13);
    expectAllReleased();
  });
});
