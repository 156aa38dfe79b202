import { createMetrics } from '@agora/observability';
import { describe, expect, it, onTestFinished } from 'vitest';
import { createHttpService, PortInUseError, type HttpApp } from '../src/index.js';
import { call, caught, gate, quietLogger, startHttp, uniqueName } from './helpers.js';

/** A route `/slow` whose handler signals when it is entered and answers when `release` opens. */
function slowRoute(entered: { open(): void }, release: Promise<unknown>) {
  return (app: HttpApp) =>
    app.get('/slow', async () => {
      entered.open();
      await release;
      return { done: true };
    });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('http kit: graceful stop', () => {
  it('lets an in-flight request finish with 200 while stop waits, then refuses new connections', async () => {
    // given a service whose handler takes 300 ms, with a request already in it
    const entered = gate();
    const { svc, url } = await startHttp(slowRoute(entered, entered.promise.then(() => sleep(300))));
    const inFlight = call(`${url}/slow`);
    await entered.promise;
    // when the service is stopped
    let stopped = false;
    const started = performance.now();
    const stopping = svc.component.stop().then(() => (stopped = true));
    // then the request completes while stop still waits for it
    const res = await inFlight;
    expect(stopped).toBe(false);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ done: true });
    // and stop ends soon after, well before the drain timeout, and nothing is served after
    await stopping;
    expect(performance.now() - started).toBeLessThan(5000);
    const err = await caught(() => call(`${url}/healthz`));
    expect((err as NodeJS.ErrnoException).code).toBe('ECONNREFUSED');
  });

  it('reports not ready and closes connections after answering while it drains', async () => {
    // given a service stopping while a request is in flight
    const entered = gate();
    const release = gate();
    const { svc, url } = await startHttp(slowRoute(entered, release.promise));
    const inFlight = call(`${url}/slow`);
    await entered.promise;
    const stopping = svc.component.stop();
    // when a load balancer probes it (readyz answers without awaiting, healthz after an await)
    const ready = await call(`${url}/readyz`);
    const health = await call(`${url}/healthz`);
    // then it is taken out of rotation but still answers, asking callers to reconnect elsewhere
    expect(ready.status).toBe(503);
    expect(ready.body).toMatchObject({ status: 'draining' });
    expect(ready.headers.connection).toBe('close');
    expect(health.status).toBe(200);
    expect(health.headers.connection).toBe('close');
    // and once the last request is answered, stop ends without waiting for the drain timeout
    const released = performance.now();
    release.open();
    expect((await inFlight).status).toBe(200);
    await stopping;
    expect(performance.now() - released).toBeLessThan(3000);
  });

  it('cuts a request that outlasts the drain timeout', async () => {
    // given a request that will not end by itself while the service stops with a 200 ms drain
    const entered = gate();
    const release = gate();
    onTestFinished(() => release.open());
    const { svc, url } = await startHttp(slowRoute(entered, release.promise), { drainTimeoutMs: 200 });
    const inFlight = caught(() => call(`${url}/slow`));
    await entered.promise;
    // when the service stops
    const started = performance.now();
    await svc.component.stop();
    // then stop did not wait for it, and its connection was cut
    expect(performance.now() - started).toBeLessThan(2000);
    expect(await inFlight).toBeInstanceOf(Error);
  });
});

describe('http kit: listening', () => {
  it('listens on the URL it reports', async () => {
    const { svc, url } = await startHttp();
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(url).toBe(svc.url());
    expect((await call(`${url}/healthz`)).status).toBe(200);
  });

  it('fails to start with port_in_use when the port is taken', async () => {
    // given a service listening on a port
    const { url } = await startHttp();
    const port = Number(new URL(url).port);
    // when another one is asked to listen on the same port
    const second = await createHttpService({ name: uniqueName('second'), logger: quietLogger(), metrics: createMetrics({ collectDefaults: false }), port });
    onTestFinished(() => second.app.close());
    const err = await caught(() => second.component.start());
    // then it fails with a code the CLI can explain
    expect(err).toBeInstanceOf(PortInUseError);
    expect((err as PortInUseError).code).toBe('port_in_use');
    expect((err as PortInUseError).port).toBe(port);
  });
});
