export { AuthError, AuthErrorCodes, isAuthError, type AuthErrorCode } from './errors.js';
export {
  generateSigningKey,
  loadOrCreateSigningKey,
  signingKeyFromPem,
  verificationKeyOf,
  type SigningKey,
  type VerificationKey,
} from './keys.js';
export {
  bearerToken,
  createTokenIssuer,
  createTokenVerifier,
  TOKEN_ALGORITHM,
  type IssuedToken,
  type Principal,
  type TokenIssuer,
  type TokenSettings,
  type TokenVerifier,
} from './tokens.js';
