import { randomUUID } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  createTokenIssuer,
  createTokenVerifier,
  generateSigningKey,
  verificationKeyOf,
  type SigningKey,
  type TokenIssuer,
  type TokenVerifier,
} from '@agora/auth';
import { createMemoryRegistry, type Registry } from '@agora/discovery';
import { createLogger, createMetrics, type Metrics } from '@agora/observability';
import type { HttpService } from '@agora/runtime';
import { onTestFinished } from 'vitest';
import { createGateway, type RouteSpec, type UpstreamPolicyOptions } from '../src/index.js';

/** A service name no other test uses, so tests never see each other's instances or series. */
export const unique = (name: string): string => `${name}-${randomUUID().slice(0, 8)}`;

/** What a fake upstream received, with the body as raw bytes. */
export interface Received {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
}

export type UpstreamHandler = (request: Received, response: ServerResponse) => void | Promise<void>;

export interface Upstream {
  readonly url: string;
  /** Every request that reached this upstream, in arrival order. */
  readonly received: Received[];
}

/** Answers 200 with what it saw, so a test can read the forwarded request from the answer too. */
const echo: UpstreamHandler = (request, response) => {
  response.writeHead(200, { 'content-type': 'application/json' });
  response.end(JSON.stringify({ method: request.method, url: request.url }));
};

/**
 * A plain node:http server on a free loopback port standing in for a service: it reads the
 * whole body as bytes (it parses nothing), records the request, then calls `handler`.
 * Closed when the test ends.
 */
export async function startUpstream(handler: UpstreamHandler = echo): Promise<Upstream> {
  const received: Received[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const request: Received = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks) };
      received.push(request);
      Promise.resolve(handler(request, res)).catch((err: unknown) => res.destroy(err as Error));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  onTestFinished(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, received };
}

/** The URL of a loopback port that was just free and on which nothing listens any more. */
export async function closedPortUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}

/** Registers `upstream` as one more instance of `service`. */
export async function register(registry: Registry, service: string, url: string): Promise<void> {
  await registry.register({ id: unique(service), service, url });
}

export const TOKENS = { issuer: 'agora', audience: 'agora-api' } as const;

export interface Keys {
  readonly key: SigningKey;
  readonly issuer: TokenIssuer;
  readonly verifier: TokenVerifier;
}

/** A fresh signing key with its issuer and the verifier the gateway gets. */
export function makeKeys(): Keys {
  const key = generateSigningKey();
  return {
    key,
    issuer: createTokenIssuer({ ...TOKENS, key, ttlSeconds: 60 }),
    verifier: createTokenVerifier({ ...TOKENS, key: verificationKeyOf(key) }),
  };
}

export interface GatewayUnderTest {
  readonly gateway: HttpService;
  readonly registry: Registry;
  readonly metrics: Metrics;
  /** Base URL of the gateway. */
  readonly url: string;
  /** Stops the gateway; safe to call again (the test's cleanup calls it too). */
  stop(): Promise<void>;
}

export interface GatewayUnderTestOptions {
  readonly routes: readonly RouteSpec[];
  readonly registry?: Registry;
  readonly verifier?: TokenVerifier;
  readonly bodyLimitBytes?: number;
  readonly upstreamTimeoutMs?: number;
  readonly drainTimeoutMs?: number;
  readonly upstream?: UpstreamPolicyOptions;
}

/** A started gateway on a free loopback port, with its own registry and metrics; stopped when the test ends. */
export async function startGateway(options: GatewayUnderTestOptions): Promise<GatewayUnderTest> {
  const registry = options.registry ?? createMemoryRegistry();
  const metrics = createMetrics({ collectDefaults: false });
  const gateway = await createGateway({
    routes: options.routes,
    registry,
    verifier: options.verifier ?? makeKeys().verifier,
    logger: createLogger({ name: 'test', level: 'silent' }),
    metrics,
    host: '127.0.0.1',
    port: 0,
    bodyLimitBytes: options.bodyLimitBytes,
    upstreamTimeoutMs: options.upstreamTimeoutMs,
    drainTimeoutMs: options.drainTimeoutMs,
    upstream: options.upstream,
  });
  await gateway.component.start();
  let stopping: Promise<void> | undefined;
  const stop = () => (stopping ??= gateway.component.stop());
  onTestFinished(stop);
  return { gateway, registry, metrics, url: gateway.url(), stop };
}

/** The `error.code` of a JSON error answer. */
export async function errorCode(response: Response): Promise<string | undefined> {
  const body = (await response.json()) as { error?: { code?: string } };
  return body.error?.code;
}

/**
 * The value of one Prometheus sample whose labels include `labels`, or undefined when there
 * is none. Label order in the exposition format is not part of the contract, so it is not
 * relied on.
 */
export function sample(exposition: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of exposition.split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)\{(.*)\} (\S+)$/.exec(line);
    if (match === null || match[1] !== name) continue;
    const present = Object.fromEntries([...(match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.entries(labels).every(([k, v]) => present[k] === v)) return Number(match[3]);
  }
  return undefined;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
