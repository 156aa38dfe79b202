/** An account as the rest of the system may see it: never the password hash. */
export interface Account {
  readonly id: string;
  readonly handle: string;
  readonly email: string;
  readonly createdAt: Date;
}

/** What is stored; the hash never leaves the service. */
export interface StoredAccount extends Account {
  readonly passwordHash: string;
}

export const HANDLE_PATTERN = '^[a-z0-9_]{3,30}$';
export const PASSWORD_MIN = 8;
/** Bounded so a caller cannot make the hash function work on megabytes. */
export const PASSWORD_MAX = 256;
export const EMAIL_MAX = 254;

/** Emails are case-insensitive in practice: stored and compared in lower case. */
export function normalizeEmail(email: string): string {
  return email.trim().toLowerCase();
}

/** A login is a handle or an email; an `@` tells which. */
export function loginKind(login: string): 'email' | 'handle' {
  return login.includes('@') ? 'email' : 'handle';
}
