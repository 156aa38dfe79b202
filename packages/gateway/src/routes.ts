export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/**
 * One public route: which requests it matches, which service owns them, and what the
 * gateway checks before forwarding. The route table is data, declared in one place.
 */
export interface RouteSpec {
  readonly methods: readonly HttpMethod[];
  /** fastify path syntax: `/v1/posts/:id`. */
  readonly path: string;
  /** Registry name of the owning service. */
  readonly service: string;
  /**
   * `required`: no valid token, no forwarding (401). `optional`: a token, if sent, must be
   * valid. `none`: the gateway does not look at tokens (signup, login).
   */
  readonly auth: 'required' | 'optional' | 'none';
  /** Scopes the token must carry (implies `auth: 'required'`): 403 `forbidden` otherwise. */
  readonly scopes?: readonly string[];
  /** Overrides the gateway's upstream timeout. */
  readonly timeoutMs?: number;
}

/** fastify's `/v1/posts/:id` as OpenAPI's `/v1/posts/{id}`. */
export function toOpenApiPath(path: string): string {
  return path.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
}
