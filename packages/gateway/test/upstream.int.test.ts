import { describe, expect, it } from 'vitest';
import { closedPortUrl, errorCode, register, sleep, startGateway, startUpstream, unique, type UpstreamHandler } from './helpers.js';

/** Answers 200 after `ms`, unless the caller has gone by then. */
const slow =
  (ms: number): UpstreamHandler =>
  async (_request, response) => {
    await sleep(ms);
    if (response.destroyed) return;
    response.writeHead(200, { 'content-type': 'application/json' });
    response.end('{"slow":true}');
  };

describe('gateway upstream failures', () => {
  it('answers 503 upstream_unavailable when the service has no registered instance', async () => {
    const service = unique('posts');
    const gw = await startGateway({ routes: [{ methods: ['GET'], path: '/v1/posts', service, auth: 'none' }] });

    const res = await fetch(`${gw.url}/v1/posts`);

    expect(res.status).toBe(503);
    expect(await errorCode(res)).toBe('upstream_unavailable');
  });

  it('answers 503 upstream_unavailable when the registered instance does not accept connections', async () => {
    const service = unique('posts');
    const gw = await startGateway({ routes: [{ methods: ['GET'], path: '/v1/posts', service, auth: 'none' }] });
    await register(gw.registry, service, await closedPortUrl());

    const res = await fetch(`${gw.url}/v1/posts`);

    expect(res.status).toBe(503);
    expect(await errorCode(res)).toBe('upstream_unavailable');
  });

  it('answers 504 upstream_timeout when the service is slower than upstreamTimeoutMs', async () => {
    const service = unique('posts');
    const upstream = await startUpstream(slow(2000));
    const gw = await startGateway({ routes: [{ methods: ['GET'], path: '/v1/posts', service, auth: 'none' }], upstreamTimeoutMs: 150 });
    await register(gw.registry, service, upstream.url);

    const started = performance.now();
    const res = await fetch(`${gw.url}/v1/posts`);

    expect(res.status).toBe(504);
    expect(await errorCode(res)).toBe('upstream_timeout');
    // Within the timeout plus slack, not rounded up to the next second.
    expect(performance.now() - started).toBeLessThan(450);
    expect(upstream.received).toHaveLength(1);
  });

  it("applies a route's timeoutMs instead of the gateway's", async () => {
    const service = unique('search');
    const upstream = await startUpstream(slow(300));
    const gw = await startGateway({
      routes: [
        { methods: ['GET'], path: '/v1/search/quick', service, auth: 'none', timeoutMs: 100 },
        { methods: ['GET'], path: '/v1/search/patient', service, auth: 'none' },
      ],
      upstreamTimeoutMs: 2000,
    });
    await register(gw.registry, service, upstream.url);

    const quick = await fetch(`${gw.url}/v1/search/quick`);
    expect(quick.status).toBe(504);
    expect(await errorCode(quick)).toBe('upstream_timeout');

    const patient = await fetch(`${gw.url}/v1/search/patient`);
    expect(patient.status).toBe(200);
    expect(await patient.json()).toEqual({ slow: true });
  });

  it('spreads requests round-robin over the instances of a service', async () => {
    const service = unique('posts');
    const first = await startUpstream();
    const second = await startUpstream();
    const gw = await startGateway({ routes: [{ methods: ['GET'], path: '/v1/posts/:id', service, auth: 'none' }] });
    await register(gw.registry, service, first.url);
    await register(gw.registry, service, second.url);

    for (let i = 0; i < 6; i++) expect((await fetch(`${gw.url}/v1/posts/${i}`)).status).toBe(200);

    const urls = (xs: typeof first.received) => xs.map((r) => r.url);
    expect(urls(first.received)).toEqual(['/v1/posts/0', '/v1/posts/2', '/v1/posts/4']);
    expect(urls(second.received)).toEqual(['/v1/posts/1', '/v1/posts/3', '/v1/posts/5']);
  });

  it('stops sending to an instance once it is deregistered', async () => {
    const service = unique('posts');
    const first = await startUpstream();
    const second = await startUpstream();
    const gw = await startGateway({ routes: [{ methods: ['GET'], path: '/v1/posts', service, auth: 'none' }] });
    await gw.registry.register({ id: `${service}-1`, service, url: first.url });
    await gw.registry.register({ id: `${service}-2`, service, url: second.url });

    await gw.registry.deregister(`${service}-1`);
    for (let i = 0; i < 3; i++) expect((await fetch(`${gw.url}/v1/posts`)).status).toBe(200);

    expect(first.received).toHaveLength(0);
    expect(second.received).toHaveLength(3);
  });
});
