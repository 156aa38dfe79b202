import type { IssuedToken, TokenIssuer } from '@agora/auth';
import { loginKind, normalizeEmail, type Account } from '../domain/account.js';
import type { AccountRepository, PasswordHasher } from './ports.js';

export interface AccountsDeps {
  readonly accounts: AccountRepository;
  readonly hasher: PasswordHasher;
  readonly tokens: TokenIssuer;
  readonly newId: () => string;
  /** Handles whose tokens carry the `admin` scope (operators of this deployment). */
  readonly adminHandles?: readonly string[];
}

/** Login failed. One error for "no such user" and "wrong password", so logins reveal nothing. */
export class InvalidCredentialsError extends Error {
  constructor() {
    super('the login or the password is wrong');
    this.name = 'InvalidCredentialsError';
  }
}

/**
 * The account use cases. Pure of HTTP and SQL: the ports are injected.
 */
export function accountsApp(deps: AccountsDeps) {
  // Verifying against a real hash when the account does not exist makes a failed login
  // take as long either way, so response times do not tell which handles exist.
  const decoy = deps.hasher.hash('decoy password that never matches');
  const admins = new Set(deps.adminHandles ?? []);
  const scopesOf = (handle: string): string[] => (admins.has(handle) ? ['admin'] : []);

  return {
    async signup(input: { handle: string; email: string; password: string }): Promise<{ account: Account; token: IssuedToken }> {
      const passwordHash = await deps.hasher.hash(input.password);
      const account = await deps.accounts.insert({ id: deps.newId(), handle: input.handle, email: normalizeEmail(input.email), passwordHash });
      const token = await deps.tokens.issue({ userId: account.id, handle: account.handle, scopes: scopesOf(account.handle) });
      return { account, token };
    },

    async login(input: { login: string; password: string }): Promise<IssuedToken> {
      const login = input.login.trim();
      const found = loginKind(login) === 'email' ? await deps.accounts.findByEmail(normalizeEmail(login)) : await deps.accounts.findByHandle(login);
      const ok = await deps.hasher.verify(found?.passwordHash ?? (await decoy), input.password);
      if (found === undefined || !ok) throw new InvalidCredentialsError();
      return deps.tokens.issue({ userId: found.id, handle: found.handle, scopes: scopesOf(found.handle) });
    },

    async byId(id: string): Promise<Account | undefined> {
      return publicView(await deps.accounts.findById(id));
    },

    async byHandle(handle: string): Promise<Account | undefined> {
      return publicView(await deps.accounts.findByHandle(handle));
    },
  };
}

export type AccountsApp = ReturnType<typeof accountsApp>;

function publicView(stored: (Account & { passwordHash?: string }) | undefined): Account | undefined {
  if (stored === undefined) return undefined;
  const { id, handle, email, createdAt } = stored;
  return { id, handle, email, createdAt };
}
