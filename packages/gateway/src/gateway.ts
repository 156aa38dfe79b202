import { bearerToken, type TokenVerifier } from '@agora/auth';
import type { DeadLetterStore } from '@agora/bus';
import type { Registry } from '@agora/discovery';
import { counter, histogram, type Logger, type Metrics } from '@agora/observability';
import { systemClock, TimeoutPolicy } from '@agora/resilience';
import { createHttpService, HttpError, KitErrorCodes, type HttpService } from '@agora/runtime';
import type { FastifyRequest } from 'fastify';
import { Agent } from 'undici';
import { deadLetterRoutes } from './admin-dlq.js';
import { mergedOpenApi } from './docs.js';
import { forward, type UpstreamOutcome } from './proxy.js';
import type { RouteSpec } from './routes.js';
import { Upstreams, type UpstreamPolicyOptions } from './upstreams.js';

export interface GatewayOptions {
  readonly routes: readonly RouteSpec[];
  readonly registry: Registry;
  readonly verifier: TokenVerifier;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly host?: string;
  readonly port?: number;
  readonly bodyLimitBytes?: number;
  readonly upstreamTimeoutMs?: number;
  readonly drainTimeoutMs?: number;
  /** Circuit breakers per instance, retries of idempotent requests, and the clock they run on. */
  readonly upstream?: UpstreamPolicyOptions;
  /** The bus's dead letter queue, served at `/admin/dlq` (admin scope) when given. */
  readonly deadLetters?: DeadLetterStore;
}

/**
 * The public entry point: matches a request against the route table, checks its token,
 * forwards it to an instance of the owning service with the request id, and streams the
 * answer back.
 * @example
 * const gateway = await createGateway({ routes, registry, verifier, logger, metrics, port: 8080 });
 * await gateway.component.start();
 */
export async function createGateway(options: GatewayOptions): Promise<HttpService> {
  const name = 'gateway';
  const http = await createHttpService({
    name,
    logger: options.logger.child({ service: name }),
    metrics: options.metrics,
    host: options.host ?? 'localhost',
    port: options.port ?? 8080,
    bodyLimitBytes: options.bodyLimitBytes ?? 1024 * 1024,
    drainTimeoutMs: options.drainTimeoutMs,
    readiness: [...new Set(options.routes.map((r) => r.service))].map((service) => ({
      name: service,
      async check() {
        if ((await options.registry.instances(service)).length === 0) throw new Error(`no instance of ${service} is registered`);
      },
    })),
  });
  const { app } = http;
  const dispatcher = new Agent({ keepAliveTimeout: 10_000, connections: 128 });
  const calls = counter(options.metrics, 'gateway_upstream_requests_total', 'Calls from the gateway to services, by outcome.', ['service', 'outcome']);
  const latency = histogram(options.metrics, 'gateway_upstream_duration_seconds', 'Latency of calls from the gateway to services.', ['service', 'outcome']);
  const observe = (service: string, outcome: UpstreamOutcome, seconds: number) => {
    calls.inc({ service, outcome });
    latency.observe({ service, outcome }, seconds);
  };
  const clock = options.upstream?.clock ?? systemClock;
  const upstreams = new Upstreams(options.registry, options.metrics, { logger: http.app.log, ...options.upstream });
  const timeouts = new Map<number, TimeoutPolicy>();
  const timeoutFor = (ms: number) => {
    let policy = timeouts.get(ms);
    if (policy === undefined) timeouts.set(ms, (policy = new TimeoutPolicy({ ms, strategy: 'cooperative', clock })));
    return policy;
  };

  // The gateway does not parse bodies: it checks their size and passes the bytes on, so the
  // owning service is the one place that validates them.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));

  const authenticate = async (request: FastifyRequest, route: Pick<RouteSpec, 'auth' | 'scopes'>) => {
    if (route.auth === 'none') return;
    const token = bearerToken(request.headers.authorization);
    if (token === undefined) {
      if (route.auth === 'required' || route.scopes !== undefined) {
        throw new HttpError(401, KitErrorCodes.AUTH_REQUIRED, 'this route needs a bearer token: log in and send Authorization: Bearer <token>');
      }
      return;
    }
    const principal = await options.verifier.verify(token);
    request.principal = principal;
    const missing = (route.scopes ?? []).filter((scope) => !principal.scopes.includes(scope));
    if (missing.length > 0) throw new HttpError(403, KitErrorCodes.FORBIDDEN, `this route needs a token with the scope ${missing.join(', ')}`);
  };

  for (const route of options.routes) {
    app.route({
      method: [...route.methods],
      url: route.path,
      schema: { hide: true },
      handler: async (request, reply) => {
        await authenticate(request, route);
        const timeoutMs = route.timeoutMs ?? options.upstreamTimeoutMs ?? 5000;
        return forward(request, reply, {
          service: route.service,
          timeout: timeoutFor(timeoutMs),
          timeoutMs,
          dispatcher,
          registry: options.registry,
          upstreams,
          clock,
          observe,
        });
      },
    });
  }

  let docs: { at: number; doc: unknown } | undefined;
  const docsHandler = async () => {
    if (docs === undefined || Date.now() - docs.at > 10_000) {
      docs = { at: Date.now(), doc: await mergedOpenApi(options.routes, options.registry, { title: 'Agora API', version: '0.1.0' }) };
    }
    return docs.doc;
  };
  app.get('/docs', { schema: { hide: true } }, docsHandler);
  app.get('/docs/openapi.json', { schema: { hide: true } }, docsHandler);

  // Operations: the circuit of every instance the gateway knows (admin scope).
  app.get('/admin/circuits', { schema: { hide: true } }, async (request) => {
    await authenticate(request, { auth: 'required', scopes: ['admin'] });
    return { circuits: await upstreams.circuits() };
  });

  if (options.deadLetters !== undefined) {
    deadLetterRoutes(app, options.deadLetters, (request) => authenticate(request, { auth: 'required', scopes: ['admin'] }));
  }

  app.addHook('onClose', async () => {
    upstreams.close();
    await dispatcher.close();
  });
  return http;
}
