import { randomUUID } from 'node:crypto';
import { errors as joseErrors, jwtVerify, SignJWT } from 'jose';
import { AuthError, AuthErrorCodes } from './errors.js';
import type { SigningKey, VerificationKey } from './keys.js';

/** The only algorithm accepted. Pinned, so `alg: none` or an HMAC forged with the public key is refused. */
export const TOKEN_ALGORITHM = 'EdDSA';

/** Who a verified token speaks for. */
export interface Principal {
  readonly userId: string;
  readonly handle: string;
  readonly scopes: readonly string[];
  readonly tokenId: string;
  readonly expiresAt: Date;
}

export interface TokenSettings {
  readonly issuer: string;
  readonly audience: string;
  /** Seconds of clock skew tolerated between issuer and verifier. */
  readonly clockToleranceSeconds?: number;
  /** Injected clock (ms since epoch), for tests. */
  readonly now?: () => number;
}

export interface IssuedToken {
  readonly token: string;
  readonly expiresAt: Date;
}

export interface TokenIssuer {
  issue(subject: { userId: string; handle: string; scopes?: readonly string[] }): Promise<IssuedToken>;
}

export interface TokenVerifier {
  /** Resolves to the principal, or rejects with an {@link AuthError}. */
  verify(token: string): Promise<Principal>;
}

/**
 * @example
 * const issuer = createTokenIssuer({ key, issuer: 'agora', audience: 'agora-api', ttlSeconds: 3600 });
 * const { token } = await issuer.issue({ userId: '42', handle: 'ada' });
 */
export function createTokenIssuer(settings: TokenSettings & { key: SigningKey; ttlSeconds: number }): TokenIssuer {
  const now = settings.now ?? Date.now;
  return {
    async issue(subject) {
      const iat = Math.floor(now() / 1000);
      const exp = iat + settings.ttlSeconds;
      const token = await new SignJWT({ handle: subject.handle, scope: (subject.scopes ?? []).join(' ') })
        .setProtectedHeader({ alg: TOKEN_ALGORITHM, kid: settings.key.kid, typ: 'JWT' })
        .setSubject(subject.userId)
        .setIssuer(settings.issuer)
        .setAudience(settings.audience)
        .setIssuedAt(iat)
        .setExpirationTime(exp)
        .setJti(randomUUID())
        .sign(settings.key.privateKey);
      return { token, expiresAt: new Date(exp * 1000) };
    },
  };
}

/**
 * @example
 * const verifier = createTokenVerifier({ key: verificationKeyOf(key), issuer: 'agora', audience: 'agora-api' });
 * const principal = await verifier.verify(token); // principal.userId === '42'
 */
export function createTokenVerifier(settings: TokenSettings & { key: VerificationKey }): TokenVerifier {
  const now = settings.now ?? Date.now;
  return {
    async verify(token) {
      try {
        const { payload } = await jwtVerify(token, settings.key.publicKey, {
          algorithms: [TOKEN_ALGORITHM],
          issuer: settings.issuer,
          audience: settings.audience,
          clockTolerance: settings.clockToleranceSeconds ?? 5,
          currentDate: new Date(now()),
          requiredClaims: ['sub', 'exp', 'iat', 'jti'],
        });
        if (typeof payload.handle !== 'string' || typeof payload.sub !== 'string' || typeof payload.jti !== 'string') {
          throw new AuthError(AuthErrorCodes.INVALID_TOKEN, 'the token lacks its subject or handle');
        }
        const scope = typeof payload.scope === 'string' ? payload.scope : '';
        return {
          userId: payload.sub,
          handle: payload.handle,
          scopes: scope === '' ? [] : scope.split(' '),
          tokenId: payload.jti,
          expiresAt: new Date((payload.exp ?? 0) * 1000),
        };
      } catch (err) {
        if (err instanceof AuthError) throw err;
        if (err instanceof joseErrors.JWTExpired) throw new AuthError(AuthErrorCodes.TOKEN_EXPIRED, 'the token has expired; log in again');
        throw new AuthError(AuthErrorCodes.INVALID_TOKEN, 'the token is not valid; log in again');
      }
    },
  };
}

/**
 * Extracts the token of an `Authorization: Bearer <token>` header.
 * @returns undefined when there is no header at all
 * @throws AuthError `invalid_token` when there is a header of another shape
 */
export function bearerToken(header: string | undefined): string | undefined {
  if (header === undefined || header === '') return undefined;
  const match = /^Bearer ([A-Za-z0-9._~+/=-]+)$/i.exec(header.trim());
  if (match?.[1] === undefined) throw new AuthError(AuthErrorCodes.INVALID_TOKEN, 'the Authorization header must be "Bearer <token>"');
  return match[1];
}
