import { describe, expect, it } from 'vitest';
import { closedPortUrl, register, sample, startGateway, startUpstream, unique } from './helpers.js';

interface ReadyReport {
  status: string;
  checks: Record<string, { status: string }>;
}

describe('gateway /readyz', () => {
  it('is 503 while a routed service has no instance and 200 once every one has', async () => {
    const posts = unique('posts');
    const users = unique('users');
    const upstream = await startUpstream();
    const gw = await startGateway({
      routes: [
        { methods: ['GET'], path: '/v1/posts', service: posts, auth: 'none' },
        { methods: ['POST'], path: '/v1/posts', service: posts, auth: 'required' },
        { methods: ['GET'], path: '/v1/users/:handle', service: users, auth: 'none' },
      ],
    });
    await register(gw.registry, posts, upstream.url);

    const partial = await fetch(`${gw.url}/readyz`);
    expect(partial.status).toBe(503);
    const report = (await partial.json()) as ReadyReport;
    expect(report.checks[posts]?.status).toBe('ok');
    expect(report.checks[users]?.status).toBe('fail');
    // Alive all along: liveness does not depend on the services behind the gateway.
    expect((await fetch(`${gw.url}/healthz`)).status).toBe(200);

    await register(gw.registry, users, upstream.url);
    const ready = await fetch(`${gw.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(Object.keys(((await ready.json()) as ReadyReport).checks).sort()).toEqual([posts, users].sort());
  });
});

describe('gateway /metrics', () => {
  it('counts upstream calls by service and outcome', async () => {
    const posts = unique('posts');
    const broken = unique('broken');
    const gone = unique('gone');
    const upstream = await startUpstream((request, response) => {
      response.writeHead(request.url === '/v1/posts/500' ? 500 : 200, { 'content-type': 'application/json' });
      response.end('{}');
    });
    const gw = await startGateway({
      routes: [
        { methods: ['GET'], path: '/v1/posts/:id', service: posts, auth: 'none' },
        { methods: ['GET'], path: '/v1/broken', service: broken, auth: 'none' },
        { methods: ['GET'], path: '/v1/gone', service: gone, auth: 'none' },
      ],
    });
    await register(gw.registry, posts, upstream.url);
    await register(gw.registry, broken, await closedPortUrl());

    for (const path of ['/v1/posts/1', '/v1/posts/2', '/v1/posts/500', '/v1/broken', '/v1/gone']) await fetch(`${gw.url}${path}`);

    const res = await fetch(`${gw.url}/metrics`);
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(sample(text, 'gateway_upstream_requests_total', { service: posts, outcome: 'ok' })).toBe(2);
    expect(sample(text, 'gateway_upstream_requests_total', { service: posts, outcome: 'error' })).toBe(1);
    expect(sample(text, 'gateway_upstream_requests_total', { service: broken, outcome: 'unavailable' })).toBe(1);
    expect(sample(text, 'gateway_upstream_requests_total', { service: gone, outcome: 'unavailable' })).toBe(1);
    expect(sample(text, 'gateway_upstream_duration_seconds_count', { service: posts, outcome: 'ok' })).toBe(2);
  });

  it('labels http_requests_total with the route pattern, not the raw URL', async () => {
    const posts = unique('posts');
    const upstream = await startUpstream();
    const gw = await startGateway({ routes: [{ methods: ['GET'], path: '/v1/posts/:id', service: posts, auth: 'none' }] });
    await register(gw.registry, posts, upstream.url);

    for (const id of ['111', '222', '333']) expect((await fetch(`${gw.url}/v1/posts/${id}?q=${id}`)).status).toBe(200);
    expect((await fetch(`${gw.url}/v1/nowhere/444`)).status).toBe(404);

    const text = await (await fetch(`${gw.url}/metrics`)).text();
    expect(sample(text, 'http_requests_total', { service: 'gateway', method: 'GET', route: '/v1/posts/:id', status: '200' })).toBe(3);
    expect(sample(text, 'http_requests_total', { service: 'gateway', method: 'GET', route: 'unmatched', status: '404' })).toBe(1);
    expect(text).not.toMatch(/\/v1\/posts\/(?!:id")/);
    expect(text).not.toContain('/v1/nowhere');
  });
});
