import { createTokenIssuer, createTokenVerifier, generateSigningKey, verificationKeyOf } from '@agora/auth';
import { describe, expect, it } from 'vitest';
import { accountsApp, InvalidCredentialsError } from '../src/app/accounts.js';
import { DuplicateAccountError, type AccountRepository, type PasswordHasher } from '../src/app/ports.js';
import type { StoredAccount } from '../src/domain/account.js';

// The use cases on in-memory ports: no database, no HTTP, no real hashing.
function memoryAccounts(): AccountRepository {
  const rows: StoredAccount[] = [];
  return {
    async insert(a) {
      if (rows.some((r) => r.handle === a.handle)) throw new DuplicateAccountError('handle');
      if (rows.some((r) => r.email === a.email)) throw new DuplicateAccountError('email');
      const row = { ...a, createdAt: new Date() };
      rows.push(row);
      const { passwordHash: _, ...account } = row;
      return account;
    },
    findByHandle: async (handle) => rows.find((r) => r.handle === handle),
    findByEmail: async (email) => rows.find((r) => r.email === email),
    findById: async (id) => rows.find((r) => r.id === id),
  };
}

function countingHasher(): PasswordHasher & { verifications: number } {
  const hasher = {
    verifications: 0,
    hash: async (password: string) => `hashed:${password}`,
    verify: async (hash: string, password: string) => {
      hasher.verifications++;
      return hash === `hashed:${password}`;
    },
  };
  return hasher;
}

function setup() {
  const key = generateSigningKey();
  const settings = { issuer: 'agora', audience: 'agora-api' };
  const hasher = countingHasher();
  let next = 100;
  const app = accountsApp({
    accounts: memoryAccounts(),
    hasher,
    tokens: createTokenIssuer({ ...settings, key, ttlSeconds: 60 }),
    newId: () => String(next++),
  });
  return { app, hasher, verifier: createTokenVerifier({ ...settings, key: verificationKeyOf(key) }) };
}

describe('accounts', () => {
  it('signs up with a normalized email and returns a token for the new account', async () => {
    const { app, verifier } = setup();
    const { account, token } = await app.signup({ handle: 'ada', email: ' Ada@Example.ORG ', password: 'correct horse' });
    expect(account).toMatchObject({ id: '100', handle: 'ada', email: 'ada@example.org' });
    expect(account).not.toHaveProperty('passwordHash');
    expect(await verifier.verify(token.token)).toMatchObject({ userId: '100', handle: 'ada' });
  });

  it('logs in by handle or by email in any case', async () => {
    const { app, verifier } = setup();
    await app.signup({ handle: 'ada', email: 'ada@example.org', password: 'correct horse' });
    expect((await verifier.verify((await app.login({ login: 'ada', password: 'correct horse' })).token)).handle).toBe('ada');
    expect((await verifier.verify((await app.login({ login: 'ADA@example.org', password: 'correct horse' })).token)).handle).toBe('ada');
  });

  it('fails a wrong password and an unknown login the same way, verifying a hash either way', async () => {
    const { app, hasher } = setup();
    await app.signup({ handle: 'ada', email: 'ada@example.org', password: 'correct horse' });
    await expect(app.login({ login: 'ada', password: 'wrong horse' })).rejects.toBeInstanceOf(InvalidCredentialsError);
    const before = hasher.verifications;
    await expect(app.login({ login: 'nobody', password: 'correct horse' })).rejects.toBeInstanceOf(InvalidCredentialsError);
    expect(hasher.verifications).toBe(before + 1);
  });

  it('refuses a taken handle or email', async () => {
    const { app } = setup();
    await app.signup({ handle: 'ada', email: 'ada@example.org', password: 'correct horse' });
    await expect(app.signup({ handle: 'ada', email: 'other@example.org', password: 'correct horse' })).rejects.toMatchObject({ field: 'handle' });
    await expect(app.signup({ handle: 'other', email: 'ADA@example.org', password: 'correct horse' })).rejects.toMatchObject({ field: 'email' });
  });
});
