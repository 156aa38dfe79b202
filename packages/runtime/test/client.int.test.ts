import { createMemoryRegistry, type Registry } from '@agora/discovery';
import { newRequestContext, runWithContext } from '@agora/observability';
import { describe, expect, it, onTestFinished } from 'vitest';
import { createServiceClient, HttpError, UpstreamError, type HttpApp } from '../src/index.js';
import { caught, startHttp, uniqueName } from './helpers.js';

/** Starts a service answering `/who` with its instance id and `/headers` with what it received. */
async function instance(registry: Registry, service: string, id: string, routes: (app: HttpApp) => void = () => undefined) {
  const running = await startHttp((app) => {
    app.get('/who', async () => ({ id }));
    app.get('/headers', async (request) => ({ requestId: request.headers['x-request-id'], traceparent: request.headers.traceparent }));
    routes(app);
  });
  await registry.register({ id, service, url: running.url });
  onTestFinished(() => registry.deregister(id));
  return running;
}

async function upstreamError(p: () => Promise<unknown>): Promise<UpstreamError> {
  const err = await caught(p);
  expect(err).toBeInstanceOf(UpstreamError);
  return err as UpstreamError;
}

/** An instance whose `/slow` answers only after 2 s (released when the test ends). */
async function slowInstance(registry: Registry, service: string) {
  let release: () => void = () => undefined;
  onTestFinished(() => release());
  return instance(registry, service, 'slow', (app) =>
    app.get('/slow', async () => {
      await new Promise<void>((resolve) => {
        release = resolve;
        setTimeout(resolve, 2000);
      });
      return { late: true };
    }),
  );
}

describe('createServiceClient', () => {
  it('spreads calls over the registered instances in turn', async () => {
    const registry = createMemoryRegistry();
    const service = uniqueName('identity');
    await instance(registry, service, 'a');
    await instance(registry, service, 'b');
    const client = createServiceClient({ service, registry });
    const seen: string[] = [];
    for (let i = 0; i < 4; i++) seen.push((await client.get<{ id: string }>('/who')).body?.id ?? 'none');
    expect(seen).toEqual(['a', 'b', 'a', 'b']);
  });

  it('forwards the request id and trace of the current context', async () => {
    // given a request being served
    const registry = createMemoryRegistry();
    const service = uniqueName('identity');
    await instance(registry, service, 'a');
    const client = createServiceClient({ service, registry });
    const ctx = newRequestContext({ requestId: uniqueName('req') });
    // when it calls another service
    const { status, body } = await runWithContext(ctx, () => client.get<{ requestId: string; traceparent: string }>('/headers'));
    // then the other service sees the same request id and trace
    expect(status).toBe(200);
    expect(body?.requestId).toBe(ctx.requestId);
    expect(body?.traceparent).toBe(`00-${ctx.traceId}-${ctx.spanId}-01`);
  });

  it('passes 4xx answers back to the caller as they are', async () => {
    const registry = createMemoryRegistry();
    const service = uniqueName('identity');
    await instance(registry, service, 'a');
    const { status, body } = await createServiceClient({ service, registry }).get('/nowhere');
    expect(status).toBe(404);
    expect(body).toMatchObject({ error: { code: 'not_found' } });
  });

  it('fails with upstream_unavailable when no instance is registered', async () => {
    const service = uniqueName('nobody');
    const err = await upstreamError(() => createServiceClient({ service, registry: createMemoryRegistry() }).get('/who'));
    expect(err.code).toBe('upstream_unavailable');
    expect(err.service).toBe(service);
    expect(err.retryable).toBe(true);
  });

  it('fails with upstream_unavailable when the instance refuses the connection', async () => {
    // given an instance registered at an address where nothing listens any more
    const registry = createMemoryRegistry();
    const service = uniqueName('identity');
    const { svc } = await instance(registry, service, 'gone');
    await svc.component.stop();
    // when it is called
    const err = await upstreamError(() => createServiceClient({ service, registry }).get('/who'));
    // then the failure is one a retry on another instance could cure
    expect(err.code).toBe('upstream_unavailable');
    expect(err.retryable).toBe(true);
  });

  it('fails with upstream_timeout when the instance answers later than timeoutMs', async () => {
    const registry = createMemoryRegistry();
    const service = uniqueName('identity');
    await slowInstance(registry, service);
    const started = performance.now();
    const err = await upstreamError(() => createServiceClient({ service, registry, timeoutMs: 100 }).get('/slow'));
    expect(err.code).toBe('upstream_timeout');
    expect(err.retryable).toBe(true);
    expect(performance.now() - started).toBeLessThan(1500);
  });

  it('fails with upstream_error, not retryable, when the instance answers 5xx', async () => {
    const registry = createMemoryRegistry();
    const service = uniqueName('identity');
    await instance(registry, service, 'broken', (app) => {
      app.get('/boom', async () => {
        throw new Error('database is down');
      });
      app.get('/unavailable', async () => {
        throw new HttpError(503, 'unavailable', 'try later');
      });
    });
    const client = createServiceClient({ service, registry });
    for (const path of ['/boom', '/unavailable']) {
      const err = await upstreamError(() => client.get(path));
      expect(err.code).toBe('upstream_error');
      expect(err.retryable).toBe(false);
    }
  });

  it('fails with upstream_error when a 5xx answer is not JSON, as a proxy in front would send', async () => {
    const registry = createMemoryRegistry();
    const service = uniqueName('identity');
    await instance(registry, service, 'proxied', (app) => app.get('/bad-gateway', async (_request, reply) => reply.status(502).type('text/html').send('<html>Bad Gateway</html>')));
    const err = await upstreamError(() => createServiceClient({ service, registry }).get('/bad-gateway'));
    expect(err.code).toBe('upstream_error');
    expect(err.retryable).toBe(false);
  });

  it('lets the caller cancel a call with its own signal', async () => {
    const registry = createMemoryRegistry();
    const service = uniqueName('identity');
    await slowInstance(registry, service);
    const controller = new AbortController();
    const pending = caught(() => createServiceClient({ service, registry, timeoutMs: 5000 }).get('/slow', { signal: controller.signal }));
    setTimeout(() => controller.abort(), 50);
    const err = await pending;
    expect(err).not.toBeInstanceOf(UpstreamError);
    expect((err as Error).name).toMatch(/Abort/);
  });
});

describe('createServiceClient, answers without a JSON body', () => {
  it('gives an undefined body for a 204 and for a non-JSON 404', async () => {
    const registry = createMemoryRegistry();
    const service = uniqueName('identity');
    await instance(registry, service, 'a', (app) => {
      app.get('/empty', async (_request, reply) => reply.status(204).send());
      app.get('/html', async (_request, reply) => reply.status(404).type('text/html').send('<h1>not here</h1>'));
    });
    const client = createServiceClient({ service, registry });
    expect(await client.get('/empty')).toEqual({ status: 204, body: undefined });
    expect(await client.get('/html')).toEqual({ status: 404, body: undefined });
  });
});
