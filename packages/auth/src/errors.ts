/**
 * The auth catalogue. Codes are stable and part of the public API: clients branch on them.
 * HTTP statuses are chosen at the edge (every code here becomes a 401 there).
 */
export const AuthErrorCodes = {
  /** No credentials were sent where they are required. */
  AUTH_REQUIRED: 'auth_required',
  /** The token is malformed, signed by another key, uses another algorithm, or names another issuer/audience. */
  INVALID_TOKEN: 'invalid_token',
  /** The token was valid once and has expired. */
  TOKEN_EXPIRED: 'token_expired',
} as const;

export type AuthErrorCode = (typeof AuthErrorCodes)[keyof typeof AuthErrorCodes];

const AUTH_ERROR = Symbol.for('agora.auth.error');

export class AuthError extends Error {
  readonly [AUTH_ERROR] = true;
  constructor(
    readonly code: AuthErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'AuthError';
  }
}

/** A flag-based guard, so it holds even when two copies of this package are loaded. */
export function isAuthError(err: unknown): err is AuthError {
  return typeof err === 'object' && err !== null && (err as Record<symbol, unknown>)[AUTH_ERROR] === true;
}
