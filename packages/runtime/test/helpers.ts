import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { createLogger, createMetrics, type Logger, type Metrics } from '@agora/observability';
import { Type, type TProperties } from '@sinclair/typebox';
import { request, type Dispatcher } from 'undici';
import { expect, onTestFinished } from 'vitest';
import { createHttpService, type HttpApp, type HttpService, type HttpServiceOptions } from '../src/index.js';

const section = <T extends TProperties>(properties: T) => Type.Object(properties, { additionalProperties: false, default: {} });

/** A small configuration schema in the shape of the CLI's: nested sections with defaults. */
export const TestConfigSchema = Type.Object(
  {
    name: Type.String({ minLength: 1, default: 'agora' }),
    gateway: section({
      host: Type.String({ minLength: 1, default: 'localhost' }),
      port: Type.Integer({ minimum: 0, maximum: 65535, default: 8080 }),
    }),
    database: section({
      url: Type.Optional(Type.String({ pattern: '^postgres(ql)?://' })),
    }),
    shutdown: section({
      timeoutMs: Type.Integer({ minimum: 1000, maximum: 600_000, default: 20_000 }),
    }),
  },
  { additionalProperties: false },
);

export const TestConfigEnv = {
  AGORA_NAME: 'name',
  AGORA_GATEWAY_HOST: 'gateway.host',
  AGORA_GATEWAY_PORT: 'gateway.port',
  DATABASE_URL: 'database.url',
  AGORA_SHUTDOWN_TIMEOUT_MS: 'shutdown.timeoutMs',
} as const;

export const testConfigSpec = { schema: TestConfigSchema, env: TestConfigEnv };

export const DEFAULT_TEST_CONFIG = {
  name: 'agora',
  gateway: { host: 'localhost', port: 8080 },
  database: {},
  shutdown: { timeoutMs: 20_000 },
};

/** A logger that writes nowhere, or into `lines` when given. */
export function quietLogger(lines?: Record<string, unknown>[]): Logger {
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      if (lines !== undefined) for (const line of chunk.toString().split('\n')) if (line !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return createLogger({ name: 'runtime-test', level: lines === undefined ? 'silent' : 'debug', destination });
}

/** The error a function throws (sync or async); fails the test when it does not throw. */
export async function caught(fn: () => unknown): Promise<unknown> {
  try {
    await fn();
  } catch (err) {
    return err;
  }
  expect.unreachable('expected an error to be thrown');
}

/** A promise the test resolves or rejects when it chooses. */
export function gate<T = void>(): { promise: Promise<T>; open(value: T): void; fail(err: unknown): void } {
  let open!: (value: T) => void;
  let fail!: (err: unknown) => void;
  const promise = new Promise<T>((resolve, reject) => {
    open = resolve;
    fail = reject;
  });
  return { promise, open, fail };
}

/** A name no other test uses, so series, services and instances never collide. */
export const uniqueName = (prefix: string) => `${prefix}-${randomUUID().slice(0, 8)}`;

export interface RunningHttp {
  readonly svc: HttpService;
  readonly metrics: Metrics;
  /** The base URL, e.g. `http://127.0.0.1:40123`. */
  readonly url: string;
}

/**
 * Starts an HTTP service on 127.0.0.1 and a free port, with `routes` added, and stops it when
 * the test ends (unless the test already did).
 */
export async function startHttp(routes: (app: HttpApp) => void = () => undefined, options: Partial<HttpServiceOptions> = {}): Promise<RunningHttp> {
  const metrics = options.metrics ?? createMetrics({ collectDefaults: false });
  const svc = await createHttpService({ name: uniqueName('svc'), logger: quietLogger(), metrics, host: '127.0.0.1', port: 0, ...options });
  routes(svc.app);
  await svc.component.start();
  onTestFinished(async () => {
    if (svc.app.server.listening) await svc.component.stop();
  });
  return { svc, metrics, url: svc.url() };
}

/** JSON request to a running service; the body is parsed when it is JSON. */
export async function call(
  url: string,
  options: { method?: Dispatcher.HttpMethod; headers?: Record<string, string>; body?: string | object } = {},
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: unknown; text: string }> {
  const { body } = options;
  const headers = { ...(body !== undefined && typeof body !== 'string' ? { 'content-type': 'application/json' } : {}), ...options.headers };
  const res = await request(url, {
    method: options.method ?? (body === undefined ? 'GET' : 'POST'),
    headers,
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
  const text = await res.body.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON: kept as text
  }
  return { status: res.statusCode, headers: res.headers, body: parsed, text };
}

/** The `error.code` of a kit error body. */
export const errorCode = (body: unknown) => (body as { error?: { code?: string } }).error?.code;
