import type { Instance, Registry } from '@agora/discovery';
import { propagationHeaders } from '@agora/observability';
import { HttpError } from '@agora/runtime';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { errors, type Dispatcher } from 'undici';

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

export type UpstreamOutcome = 'ok' | 'unavailable' | 'timeout' | 'error' | 'cancelled';

export interface ForwardOptions {
  readonly service: string;
  readonly timeoutMs: number;
  readonly dispatcher: Dispatcher;
  readonly registry: Registry;
  readonly pick: (instances: readonly Instance[]) => Instance;
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

/**
 * Sends the request to one instance of the owning service and streams its answer back.
 * The answer of the service is passed through untouched (its 4xx included); only a
 * service that cannot be reached or does not answer in time becomes a gateway error.
 */
export async function forward(request: FastifyRequest, reply: FastifyReply, options: ForwardOptions): Promise<FastifyReply> {
  const instances = await options.registry.instances(options.service);
  if (instances.length === 0) {
    options.observe(options.service, 'unavailable', 0);
    throw new HttpError(503, GatewayErrorCodes.UPSTREAM_UNAVAILABLE, `the ${options.service} service is not available; try again shortly`);
  }
  const instance = options.pick(instances);
  const started = performance.now();
  // A caller that hangs up cancels the upstream call. (The response's `close`, not the
  // request's: a request stream closes as soon as its body has been read.)
  const cancel = new AbortController();
  const onClose = () => {
    if (!reply.raw.writableFinished) cancel.abort();
  };
  reply.raw.once('close', onClose);
  // undici's headersTimeout runs on a coarse timer (about a second of resolution) and starts
  // only once connected, so a native timer bounds connect, send and wait for the headers.
  let timedOut = false;
  const deadline = setTimeout(() => {
    timedOut = true;
    cancel.abort();
  }, options.timeoutMs);
  try {
    const body = request.body;
    const res = await options.dispatcher.request({
      origin: instance.url,
      path: request.url,
      method: request.method as Dispatcher.HttpMethod,
      headers: forwardedHeaders(request),
      body: Buffer.isBuffer(body) && body.length > 0 ? body : null,
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
      signal: cancel.signal,
    });
    clearTimeout(deadline);
    options.observe(options.service, res.statusCode >= 500 ? 'error' : 'ok', (performance.now() - started) / 1000);
    for (const [name, value] of Object.entries(res.headers)) {
      if (value !== undefined && !HOP_BY_HOP.has(name)) void reply.header(name, value);
    }
    void reply.status(res.statusCode);
    if (res.statusCode === 204 || res.statusCode === 304 || request.method === 'HEAD') {
      await res.body.dump();
      return reply.send();
    }
    return reply.send(res.body);
  } catch (err) {
    const seconds = (performance.now() - started) / 1000;
    if (timedOut || err instanceof errors.HeadersTimeoutError || err instanceof errors.BodyTimeoutError) {
      options.observe(options.service, 'timeout', seconds);
      throw new HttpError(504, GatewayErrorCodes.UPSTREAM_TIMEOUT, `the ${options.service} service did not answer within ${options.timeoutMs} ms`);
    }
    if (cancel.signal.aborted) {
      // The caller hung up; nobody reads this answer. 499 as nginx logs it.
      options.observe(options.service, 'cancelled', seconds);
      throw new HttpError(499, 'client_closed_request', 'the caller closed the connection before the answer');
    }
    options.observe(options.service, 'unavailable', seconds);
    request.log.warn({ err, service: options.service, instance: instance.id }, 'upstream call failed');
    throw new HttpError(503, GatewayErrorCodes.UPSTREAM_UNAVAILABLE, `the ${options.service} service is not available; try again shortly`);
  } finally {
    clearTimeout(deadline);
    reply.raw.off('close', onClose);
  }
}
