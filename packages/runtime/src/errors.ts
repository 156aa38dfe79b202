/**
 * The error every HTTP handler throws to answer with a 4xx: a status, a stable `code`
 * clients can branch on, and a message that tells the caller what to fix.
 * Domain errors are translated into these at the edge (the service's http adapter).
 */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

/** The body of every error answer in Agora. */
export interface ErrorBody {
  error: { code: string; message: string; details?: unknown };
}

/** Codes the service kit itself answers with. Services add their own next to their routes. */
export const KitErrorCodes = {
  VALIDATION_FAILED: 'validation_failed',
  INVALID_JSON: 'invalid_json',
  PAYLOAD_TOO_LARGE: 'payload_too_large',
  UNSUPPORTED_MEDIA_TYPE: 'unsupported_media_type',
  NOT_FOUND: 'not_found',
  METHOD_NOT_ALLOWED: 'method_not_allowed',
  AUTH_REQUIRED: 'auth_required',
  INVALID_TOKEN: 'invalid_token',
  TOKEN_EXPIRED: 'token_expired',
  FORBIDDEN: 'forbidden',
  UNAVAILABLE: 'unavailable',
  INTERNAL: 'internal',
} as const;

export const notFound = (what: string) => new HttpError(404, KitErrorCodes.NOT_FOUND, `${what} was not found`);
export const forbidden = (why: string) => new HttpError(403, KitErrorCodes.FORBIDDEN, why);
export const conflict = (code: string, message: string) => new HttpError(409, code, message);
export const badRequest = (code: string, message: string, details?: unknown) => new HttpError(400, code, message, details);

/** Builds the JSON body of an error answer. */
export function errorBody(code: string, message: string, details?: unknown): ErrorBody {
  return { error: details === undefined ? { code, message } : { code, message, details } };
}
