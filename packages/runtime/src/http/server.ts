import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TokenVerifier, Principal } from '@agora/auth';
import { bearerToken, isAuthError } from '@agora/auth';
import {
  acceptRequestId,
  httpMetrics,
  newRequestContext,
  runHealthChecks,
  runWithContext,
  type HealthCheck,
  type Logger,
  type Metrics,
} from '@agora/observability';
import swagger from '@fastify/swagger';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { LogController, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { UpstreamError } from '../client.js';
import { errorBody, HttpError, KitErrorCodes } from '../errors.js';
import type { Component } from '../lifecycle.js';
import { drainTracker } from './drain.js';
import { describeValidation, validatorCompiler } from './validation.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by `app.authenticate` on routes that require a user. */
    principal?: Principal;
  }
  interface FastifyInstance {
    /** preHandler that requires a valid bearer token and sets `request.principal`. */
    authenticate(request: FastifyRequest, reply: FastifyReply): Promise<void>;
  }
}

export interface HttpServiceOptions {
  /** Service name: the logger's name and the `service` label of its metrics. */
  readonly name: string;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly host?: string;
  /** 0 picks a free port. */
  readonly port?: number;
  readonly bodyLimitBytes?: number;
  /** What `/readyz` checks: databases, upstreams. */
  readonly readiness?: readonly HealthCheck[];
  /** Enables `app.authenticate`. */
  readonly verifier?: TokenVerifier;
  /** How long `stop` waits for in-flight requests before cutting connections. */
  readonly drainTimeoutMs?: number;
  readonly openapi?: { readonly title: string; readonly version: string; readonly description?: string };
}

export type HttpApp = FastifyInstance<Server, IncomingMessage, ServerResponse, Logger, TypeBoxTypeProvider>;

export interface HttpService {
  readonly app: HttpApp;
  /** Starts listening on start; on stop, refuses new requests, drains, closes. */
  readonly component: Component;
  /** The base URL it listens on; known once started. */
  url(): string;
}

/**
 * An HTTP server with what every Agora service needs: request ids taken from or given to
 * `x-request-id`, a request context for logs and outgoing calls, per-route metrics, JSON
 * errors with stable codes, strict validation, `/healthz`, `/readyz`, `/metrics`,
 * `/openapi.json`, bearer-token authentication, and a graceful drain on stop.
 * @example
 * const svc = createHttpService({ name: 'hello', logger, metrics });
 * svc.app.get('/hello', async () => ({ hello: 'world' }));
 * await svc.component.start(); // listening on svc.url()
 */
export async function createHttpService(options: HttpServiceOptions): Promise<HttpService> {
  const app = Fastify({
    loggerInstance: options.logger,
    bodyLimit: options.bodyLimitBytes ?? 1024 * 1024,
    genReqId: (req) => acceptRequestId(req.headers['x-request-id']),
    // The logger's mixin adds requestId and traceId from the request context; a binding
    // here as well would write them twice.
    childLoggerFactory: (logger, _bindings, opts) => logger.child({}, opts),
    // One access-log line per request is written by the onResponse hook below.
    logController: new LogController({ disableRequestLogging: true }),
    // The drain (drain.ts) decides when to stop taking requests; fastify's own 503 while
    // closing would answer in another error format.
    return503OnClosing: false,
    forceCloseConnections: 'idle',
  }).withTypeProvider<TypeBoxTypeProvider>() as unknown as HttpApp;
  const drain = drainTracker(app.server);

  app.setValidatorCompiler(validatorCompiler());
  // JSON only: a text body is refused with 415 rather than handed to a handler as a string.
  app.removeContentTypeParser('text/plain');

  // Every request runs inside its context, so logs and outgoing calls carry its ids.
  app.addHook('onRequest', (request, reply, done) => {
    const ctx = newRequestContext({ requestId: request.id, traceparent: request.headers.traceparent });
    void reply.header('x-request-id', ctx.requestId);
    runWithContext(ctx, done);
  });

  const http = httpMetrics(options.metrics);
  app.addHook('onResponse', (request, reply, done) => {
    const route = request.routeOptions.url ?? 'unmatched';
    http.observe({ service: options.name, method: request.method, route, status: reply.statusCode }, reply.elapsedTime / 1000);
    const level = reply.statusCode >= 500 ? 'error' : 'info';
    request.log[level]({ requestId: request.id, method: request.method, route, url: request.url, status: reply.statusCode, ms: Math.round(reply.elapsedTime) }, 'request');
    done();
  });

  app.setErrorHandler((err: FastifyError, request, reply) => {
    const { status, body } = toErrorAnswer(err);
    if (status >= 500) request.log.error({ err }, 'request failed');
    if (status === 401) void reply.header('www-authenticate', 'Bearer');
    return reply.status(status).send(body);
  });

  app.setNotFoundHandler((request, reply) =>
    reply.status(404).send(errorBody(KitErrorCodes.NOT_FOUND, `there is no route ${request.method} ${request.url.split('?')[0]}`)),
  );

  const verifier = options.verifier;
  app.decorate('authenticate', async (request: FastifyRequest) => {
    if (verifier === undefined) throw new Error(`${options.name}: a route uses app.authenticate but the service was built without a verifier`);
    const token = bearerToken(request.headers.authorization);
    if (token === undefined) throw new HttpError(401, KitErrorCodes.AUTH_REQUIRED, 'this route needs a bearer token: log in and send Authorization: Bearer <token>');
    request.principal = await verifier.verify(token);
  });

  // Registered before any route, so every route the service adds is documented.
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: options.openapi ?? { title: options.name, version: '0.1.0' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } } },
    },
    hideUntagged: false,
  });

  const hidden = { schema: { hide: true } };
  app.get('/healthz', hidden, async () => ({ status: 'ok' }));
  app.get('/readyz', hidden, async (_request, reply) => {
    if (drain.draining) return reply.status(503).send({ status: 'draining', checks: {} });
    const report = await runHealthChecks(options.readiness ?? []);
    return reply.status(report.status === 'ok' ? 200 : 503).send(report);
  });
  app.get('/metrics', hidden, async (_request, reply) => reply.type(options.metrics.contentType).send(await options.metrics.render()));
  app.get('/openapi.json', hidden, async () => app.swagger());

  let address = '';
  const component: Component = {
    name: `${options.name}-http`,
    async start() {
      try {
        address = await app.listen({ host: options.host ?? '127.0.0.1', port: options.port ?? 0 });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') {
          throw new PortInUseError(options.name, options.port ?? 0);
        }
        throw err;
      }
      const bound = app.server.address() as AddressInfo;
      address = `http://${bound.family === 'IPv6' ? `[${bound.address}]` : bound.address}:${bound.port}`;
    },
    async stop() {
      const quiet = await drain.drain({ timeoutMs: options.drainTimeoutMs ?? 10_000 });
      if (!quiet) options.logger.warn({ service: options.name }, 'drain timed out; open connections were cut');
      await app.close();
    },
  };
  return { app, component, url: () => address };
}

/** The listening port is taken by another process. */
export class PortInUseError extends Error {
  readonly code = 'port_in_use';
  constructor(
    readonly server: string,
    readonly port: number,
  ) {
    super(`${server}: port ${port} is already in use by another process`);
    this.name = 'PortInUseError';
  }
}

/** Maps any error to its HTTP answer. Unknown errors become a bare 500 with no details. */
export function toErrorAnswer(err: unknown): { status: number; body: ReturnType<typeof errorBody> } {
  if (err instanceof HttpError) return { status: err.status, body: errorBody(err.code, err.message, err.details) };
  // Another service this one depends on failed: not the caller's fault, and not a bug here.
  if (err instanceof UpstreamError) {
    const status = err.code === 'upstream_timeout' ? 504 : 503;
    const code = err.code === 'upstream_timeout' ? 'upstream_timeout' : 'upstream_unavailable';
    return { status, body: errorBody(code, `a service this request needs (${err.service}) is not available; try again shortly`) };
  }
  if (isAuthError(err)) return { status: 401, body: errorBody(err.code, err.message) };
  const e = err as Partial<FastifyError> & { validation?: unknown; validationContext?: string; name?: string };
  if (Array.isArray(e.validation)) {
    const issues = describeValidation(e.validation, e.validationContext ?? 'body');
    const message = issues.map((i) => i.message).join('; ');
    return { status: 400, body: errorBody(KitErrorCodes.VALIDATION_FAILED, message, issues) };
  }
  switch (e.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return { status: 413, body: errorBody(KitErrorCodes.PAYLOAD_TOO_LARGE, 'the request body is larger than this server accepts') };
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return { status: 415, body: errorBody(KitErrorCodes.UNSUPPORTED_MEDIA_TYPE, 'send the body as JSON with Content-Type: application/json') };
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return { status: 400, body: errorBody(KitErrorCodes.INVALID_JSON, 'the request body is not valid JSON') };
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return { status: 400, body: errorBody('invalid_content_length', 'Content-Length does not match the body') };
  }
  if (e.name === 'SyntaxError' && e.statusCode === 400) {
    return { status: 400, body: errorBody(KitErrorCodes.INVALID_JSON, 'the request body is not valid JSON') };
  }
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return { status: e.statusCode, body: errorBody('bad_request', e.message ?? 'bad request') };
  }
  return { status: 500, body: errorBody(KitErrorCodes.INTERNAL, 'internal error; the request id in x-request-id finds it in the logs') };
}
