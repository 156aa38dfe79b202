import { AsyncLocalStorage } from 'node:async_hooks';
import { randomBytes, randomUUID } from 'node:crypto';

/**
 * What every log line and every outgoing call made while serving one request needs to know.
 * Carried by AsyncLocalStorage so that code deep in a call stack (a repository, a service
 * client) logs and propagates ids without threading them through every signature.
 */
export interface RequestContext {
  /** Stable across the gateway and every service a request touches (`x-request-id`). */
  readonly requestId: string;
  /** W3C trace id (32 hex chars), taken from an incoming `traceparent` or made here. */
  readonly traceId: string;
  /** W3C parent span id for the next hop (16 hex chars). */
  readonly spanId: string;
}

const storage = new AsyncLocalStorage<RequestContext>();

/**
 * Runs `fn` with `ctx` as the current request context.
 * @example
 * runWithContext(newRequestContext(), () => logger.info('inside a request'));
 */
export function runWithContext<T>(ctx: RequestContext, fn: () => T): T {
  return storage.run(ctx, fn);
}

/** The context of the request being served, if any. */
export function currentContext(): RequestContext | undefined {
  return storage.getStore();
}

const REQUEST_ID = /^[A-Za-z0-9._:@-]{1,128}$/;
const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$/;

/**
 * Accepts a caller's request id only if it is short and printable, so that ids cannot be
 * used to inject into logs or headers; otherwise a new one is made.
 */
export function acceptRequestId(candidate: string | string[] | undefined): string {
  const value = Array.isArray(candidate) ? candidate[0] : candidate;
  return value !== undefined && REQUEST_ID.test(value) ? value : randomUUID();
}

/**
 * Builds the context of an incoming request from its headers.
 * @example
 * const ctx = newRequestContext({ requestId: req.headers['x-request-id'], traceparent: req.headers.traceparent });
 */
export function newRequestContext(incoming: { requestId?: string | string[]; traceparent?: string | string[] } = {}): RequestContext {
  const tp = Array.isArray(incoming.traceparent) ? incoming.traceparent[0] : incoming.traceparent;
  const match = tp === undefined ? null : TRACEPARENT.exec(tp);
  const traceId = match?.[1] !== undefined && !/^0+$/.test(match[1]) ? match[1] : randomBytes(16).toString('hex');
  return { requestId: acceptRequestId(incoming.requestId), traceId, spanId: randomBytes(8).toString('hex') };
}

/**
 * Headers that carry the current context to the next hop.
 * @example
 * await request(url, { headers: { ...propagationHeaders() } });
 */
export function propagationHeaders(ctx: RequestContext | undefined = currentContext()): Record<string, string> {
  if (ctx === undefined) return {};
  return { 'x-request-id': ctx.requestId, traceparent: `00-${ctx.traceId}-${ctx.spanId}-01` };
}
