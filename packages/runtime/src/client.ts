import type { Registry } from '@agora/discovery';
import { propagationHeaders } from '@agora/observability';
import { errors as undiciErrors, request, type Dispatcher } from 'undici';

export type UpstreamErrorCode = 'upstream_unavailable' | 'upstream_timeout' | 'upstream_error';

/** A call to another service failed for a reason of its own, not of the caller's input. */
export class UpstreamError extends Error {
  /** Read by retry filters: a timeout or a refused connection may succeed on another try. */
  readonly retryable: boolean;
  constructor(
    readonly code: UpstreamErrorCode,
    readonly service: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'UpstreamError';
    this.retryable = code !== 'upstream_error';
  }
}

export interface ServiceClientOptions {
  readonly service: string;
  readonly registry: Registry;
  readonly timeoutMs?: number;
  readonly dispatcher?: Dispatcher;
}

export interface ServiceResponse<T> {
  readonly status: number;
  /** The parsed JSON body; undefined when the answer had none. */
  readonly body: T | undefined;
}

/** JSON over HTTP to one service, wherever its instances are. */
export interface ServiceClient {
  get<T>(path: string, options?: { signal?: AbortSignal }): Promise<ServiceResponse<T>>;
}

/**
 * Finds an instance of `service` in the registry, spreads calls over its instances in turn,
 * forwards the request and trace ids, and bounds every call by a timeout.
 * @example
 * const identity = createServiceClient({ service: 'identity', registry });
 * const { status, body } = await identity.get<{ account: Account }>('/internal/v1/accounts/by-handle/ada');
 */
export function createServiceClient(options: ServiceClientOptions): ServiceClient {
  let next = 0;
  const timeoutMs = options.timeoutMs ?? 2000;
  return {
    async get<T>(path: string, { signal }: { signal?: AbortSignal } = {}) {
      const instances = await options.registry.instances(options.service);
      if (instances.length === 0) throw new UpstreamError('upstream_unavailable', options.service, `no instance of ${options.service} is registered`);
      const instance = instances[next++ % instances.length]!;
      const timeout = AbortSignal.timeout(timeoutMs);
      try {
        const res = await request(new URL(path, instance.url), {
          method: 'GET',
          headers: { accept: 'application/json', ...propagationHeaders() },
          signal: signal === undefined ? timeout : AbortSignal.any([signal, timeout]),
          ...(options.dispatcher === undefined ? {} : { dispatcher: options.dispatcher }),
        });
        // Checked before parsing: a 5xx from a proxy in front of the service is often not JSON.
        if (res.statusCode >= 500) {
          await res.body.dump();
          throw new UpstreamError('upstream_error', options.service, `${options.service} answered ${res.statusCode}`);
        }
        // An answer without a JSON body (a 204, a proxy's HTML 404) has no body to give.
        const text = await res.body.text();
        const isJson = String(res.headers['content-type'] ?? '').includes('json') && text !== '';
        let body: T | undefined;
        try {
          body = isJson ? (JSON.parse(text) as T) : undefined;
        } catch (cause) {
          throw new UpstreamError('upstream_error', options.service, `${options.service} answered ${res.statusCode} with malformed JSON`, { cause });
        }
        return { status: res.statusCode, body };
      } catch (err) {
        if (err instanceof UpstreamError) throw err;
        if (timeout.aborted) throw new UpstreamError('upstream_timeout', options.service, `${options.service} did not answer within ${timeoutMs} ms`, { cause: err });
        if (err instanceof undiciErrors.UndiciError || (err as NodeJS.ErrnoException).code === 'ECONNREFUSED') {
          throw new UpstreamError('upstream_unavailable', options.service, `${options.service} could not be reached`, { cause: err });
        }
        throw err;
      }
    },
  };
}
