import type { Account, StoredAccount } from '../domain/account.js';

export interface AccountRepository {
  /** @throws DuplicateAccountError when the handle or email is taken */
  insert(account: { id: string; handle: string; email: string; passwordHash: string }): Promise<Account>;
  findByHandle(handle: string): Promise<StoredAccount | undefined>;
  findByEmail(email: string): Promise<StoredAccount | undefined>;
  findById(id: string): Promise<StoredAccount | undefined>;
}

export interface PasswordHasher {
  hash(password: string): Promise<string>;
  verify(hash: string, password: string): Promise<boolean>;
}

export class DuplicateAccountError extends Error {
  constructor(readonly field: 'handle' | 'email') {
    super(`${field} is taken`);
    this.name = 'DuplicateAccountError';
  }
}
