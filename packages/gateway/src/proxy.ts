import type { Instance, Registry } from '@agora/discovery';
import { propagationHeaders } from '@agora/observability';
import { isBrokenCircuitError, isTaskTimeoutError, type Clock, type TimeoutPolicy } from '@agora/resilience';
import { HttpError } from '@agora/runtime';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { errors, type Dispatcher } from 'undici';
import { CallerGoneError, NoOtherInstanceError, type Upstreams } from './upstreams.js';

/** Headers that describe one connection, not the message: never forwarded (RFC 9110 7.6.1). */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'host',
  'content-length',
]);

export const GatewayErrorCodes = {
  UPSTREAM_UNAVAILABLE: 'upstream_unavailable',
  UPSTREAM_TIMEOUT: 'upstream_timeout',
} as const;

export type UpstreamOutcome = 'ok' | 'unavailable' | 'timeout' | 'error' | 'cancelled' | 'circuit_open';

/** Methods that mean the same done twice (RFC 9110 9.2.2): only these are retried. */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE']);

export interface ForwardOptions {
  readonly service: string;
  /** Bounds each try, from sending the request to the answer's headers. */
  readonly timeout: TimeoutPolicy;
  readonly timeoutMs: number;
  readonly dispatcher: Dispatcher;
  readonly registry: Registry;
  readonly upstreams: Upstreams;
  readonly clock: Clock;
  readonly observe: (service: string, outcome: UpstreamOutcome, seconds: number) => void;
}

function forwardedHeaders(request: FastifyRequest): Record<string, string | string[]> {
  const headers: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(request.headers)) {
    // `expect: 100-continue` was answered by this server and the body is already read;
    // undici refuses to send the header at all, which made every such request a 503.
    if (value !== undefined && !HOP_BY_HOP.has(name) && name !== 'expect') headers[name] = value;
  }
  const prior = request.headers['x-forwarded-for'];
  headers['x-forwarded-for'] = prior === undefined ? request.ip : `${String(prior)}, ${request.ip}`;
  headers['x-forwarded-proto'] = request.protocol;
  if (request.headers.host !== undefined) headers['x-forwarded-host'] = request.headers.host;
  return { ...headers, ...propagationHeaders() };
}

const unavailable = (service: string) =>
  new HttpError(503, GatewayErrorCodes.UPSTREAM_UNAVAILABLE, `the ${service} service is not available; try again shortly`);

/**
 * Sends the request to an instance of the owning service and streams its answer back.
 *
 * Each try goes through the instance's circuit breaker and a timeout; an idempotent request
 * that fails fast in transport (refused, reset, circuit open) is tried once more on another
 * instance, within the service's retry budget. The answer of the service is passed
 * through untouched (its 4xx and 5xx included); only a service that cannot be reached or
 * does not answer in time becomes a gateway error: 503 `upstream_unavailable` (with
 * Retry-After when every circuit is open) or 504 `upstream_timeout`.
 */
export async function forward(request: FastifyRequest, reply: FastifyReply, options: ForwardOptions): Promise<FastifyReply> {
  const { service } = options;
  const instances = await options.registry.instances(service);
  if (instances.length === 0) {
    options.observe(service, 'unavailable', 0);
    throw unavailable(service);
  }
  const started = performance.now();
  // A caller that hangs up cancels the upstream call. (The response's `close`, not the
  // request's: a request stream closes as soon as its body has been read.)
  const cancel = new AbortController();
  const onClose = () => {
    if (!reply.raw.writableFinished) cancel.abort(new CallerGoneError());
  };
  reply.raw.once('close', onClose);
  const tried = new Set<string>();
  const body = Buffer.isBuffer(request.body) && request.body.length > 0 ? request.body : null;
  const tryOnce = async ({ signal }: { signal: AbortSignal }) => {
    const instance = options.upstreams.pick(instances, tried);
    tried.add(instance.id);
    try {
      return await attempt(instance, signal);
    } catch (err) {
      throw tried.size >= instances.length ? new NoOtherInstanceError(err) : err;
    }
  };
  const attempt = (instance: Instance, signal: AbortSignal) =>
    options.upstreams.breakerFor(instance).execute(
      () =>
        options.timeout.execute(
          ({ signal: deadline }) =>
            options.dispatcher.request({
              origin: instance.url,
              path: request.url,
              method: request.method as Dispatcher.HttpMethod,
              headers: forwardedHeaders(request),
              body,
              // The timeout policy bounds the wait for headers; this bounds silence mid-body.
              bodyTimeout: options.timeoutMs,
              signal: deadline,
            }),
          { signal },
        ),
      { signal },
    );
  try {
    const res = IDEMPOTENT.has(request.method)
      ? await options.upstreams.retryFor(service).execute(tryOnce, { signal: cancel.signal })
      : await tryOnce({ signal: cancel.signal });
    options.observe(service, res.statusCode >= 500 ? 'error' : 'ok', (performance.now() - started) / 1000);
    for (const [name, value] of Object.entries(res.headers)) {
      if (value !== undefined && !HOP_BY_HOP.has(name)) void reply.header(name, value);
    }
    void reply.status(res.statusCode);
    if (res.statusCode === 204 || res.statusCode === 304 || request.method === 'HEAD') {
      await res.body.dump();
      return reply.send();
    }
    return reply.send(res.body);
  } catch (caught) {
    const err = caught instanceof NoOtherInstanceError ? caught.failure : caught;
    const seconds = (performance.now() - started) / 1000;
    if (cancel.signal.aborted) {
      // The caller hung up; nobody reads this answer. 499 as nginx logs it.
      options.observe(service, 'cancelled', seconds);
      throw new HttpError(499, 'client_closed_request', 'the caller closed the connection before the answer');
    }
    if (isTaskTimeoutError(err) || err instanceof errors.BodyTimeoutError) {
      options.observe(service, 'timeout', seconds);
      throw new HttpError(504, GatewayErrorCodes.UPSTREAM_TIMEOUT, `the ${service} service did not answer within ${options.timeoutMs} ms`);
    }
    if (isBrokenCircuitError(err)) {
      options.observe(service, 'circuit_open', seconds);
      if (Number.isFinite(err.retryAt)) void reply.header('retry-after', String(Math.max(1, Math.ceil((err.retryAt - options.clock.now()) / 1000))));
      throw unavailable(service);
    }
    options.observe(service, 'unavailable', seconds);
    request.log.warn({ err, service, tried: [...tried] }, 'upstream call failed');
    throw unavailable(service);
  } finally {
    reply.raw.off('close', onClose);
  }
}
