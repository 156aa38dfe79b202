import { isUniqueViolation, type Queryable } from '@agora/db';
import type { Account, StoredAccount } from '../domain/account.js';
import { DuplicateAccountError, type AccountRepository } from '../app/ports.js';

interface Row {
  id: string;
  handle: string;
  email: string;
  password_hash: string;
  created_at: Date;
}

const COLUMNS = 'id::text AS id, handle, email, password_hash, created_at';

function toAccount(row: Row): StoredAccount {
  return { id: row.id, handle: row.handle, email: row.email, passwordHash: row.password_hash, createdAt: row.created_at };
}

/** Accounts in the `identity` schema (the pool's search_path). */
export function postgresAccounts(db: Queryable): AccountRepository {
  const one = async (where: string, value: string) => {
    const { rows } = await db.query<Row>(`SELECT ${COLUMNS} FROM accounts WHERE ${where} = $1`, [value]);
    return rows[0] === undefined ? undefined : toAccount(rows[0]);
  };
  return {
    async insert(a): Promise<Account> {
      try {
        const { rows } = await db.query<Row>(
          `INSERT INTO accounts (id, handle, email, password_hash) VALUES ($1, $2, $3, $4) RETURNING ${COLUMNS}`,
          [a.id, a.handle, a.email, a.passwordHash],
        );
        const { passwordHash: _, ...account } = toAccount(rows[0]!);
        return account;
      } catch (err) {
        if (isUniqueViolation(err, 'accounts_handle_key')) throw new DuplicateAccountError('handle');
        if (isUniqueViolation(err, 'accounts_email_key')) throw new DuplicateAccountError('email');
        throw err;
      }
    },
    findByHandle: (handle) => one('handle', handle),
    findByEmail: (email) => one('email', email),
    // The id column is bigint: a non-numeric id can match nothing, and must not reach SQL as one.
    findById: async (id) => (/^\d{1,19}$/.test(id) ? one('id', id) : undefined),
  };
}
