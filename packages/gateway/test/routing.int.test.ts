import { describe, expect, it } from 'vitest';
import { errorCode, register, startGateway, startUpstream, unique } from './helpers.js';

describe('gateway routing', () => {
  it('forwards a declared route to the owning service with method, path and query intact', async () => {
    const posts = unique('posts');
    const users = unique('users');
    const postsUpstream = await startUpstream();
    const usersUpstream = await startUpstream();
    const gw = await startGateway({
      routes: [
        { methods: ['GET', 'DELETE'], path: '/v1/posts/:id', service: posts, auth: 'none' },
        { methods: ['GET'], path: '/v1/users/:handle', service: users, auth: 'none' },
      ],
    });
    await register(gw.registry, posts, postsUpstream.url);
    await register(gw.registry, users, usersUpstream.url);

    const got = await fetch(`${gw.url}/v1/posts/42?limit=10&tag=a%20b&tag=c`);
    expect(got.status).toBe(200);
    const deleted = await fetch(`${gw.url}/v1/posts/42`, { method: 'DELETE' });
    expect(deleted.status).toBe(200);
    const user = await fetch(`${gw.url}/v1/users/ada`);
    expect(user.status).toBe(200);

    expect(postsUpstream.received.map((r) => [r.method, r.url])).toEqual([
      ['GET', '/v1/posts/42?limit=10&tag=a%20b&tag=c'],
      ['DELETE', '/v1/posts/42'],
    ]);
    expect(usersUpstream.received.map((r) => [r.method, r.url])).toEqual([['GET', '/v1/users/ada']]);
  });

  it('answers 404 not_found for a method the route does not declare and for an undeclared path', async () => {
    const posts = unique('posts');
    const upstream = await startUpstream();
    const gw = await startGateway({ routes: [{ methods: ['GET'], path: '/v1/posts/:id', service: posts, auth: 'none' }] });
    await register(gw.registry, posts, upstream.url);

    for (const [method, path] of [
      ['PUT', '/v1/posts/42'],
      ['POST', '/v1/posts/42'],
      ['GET', '/v1/comments/42'],
      ['GET', '/v1/posts'],
    ] as const) {
      const res = await fetch(`${gw.url}${path}`, { method, ...(method === 'GET' ? {} : { body: '{}', headers: { 'content-type': 'application/json' } }) });
      expect(res.status, `${method} ${path}`).toBe(404);
      expect(res.headers.get('content-type')).toMatch(/^application\/json/);
      expect(await errorCode(res)).toBe('not_found');
    }
    expect(upstream.received).toHaveLength(0);
  });

  it("returns the upstream's status, headers and body untouched, except hop-by-hop headers", async () => {
    const posts = unique('posts');
    const body = JSON.stringify({ id: '42', text: 'héllo wörld' });
    const upstream = await startUpstream((_request, response) => {
      response.writeHead(201, {
        'content-type': 'application/json; charset=utf-8',
        'cache-control': 'private, max-age=7',
        etag: '"v42"',
        location: '/v1/posts/42',
        'x-upstream-marker': 'from-the-service',
        'set-cookie': ['a=1; Path=/', 'b=2; Path=/'],
        // Hop-by-hop: they describe the gateway-to-service connection, not the message.
        'proxy-authenticate': 'Basic realm="internal"',
        'keep-alive': 'timeout=99, max=7',
      });
      response.end(body);
    });
    const gw = await startGateway({ routes: [{ methods: ['POST'], path: '/v1/posts', service: posts, auth: 'none' }] });
    await register(gw.registry, posts, upstream.url);

    const res = await fetch(`${gw.url}/v1/posts`, { method: 'POST', body: '{"text":"x"}', headers: { 'content-type': 'application/json' } });

    expect(res.status).toBe(201);
    expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(res.headers.get('cache-control')).toBe('private, max-age=7');
    expect(res.headers.get('etag')).toBe('"v42"');
    expect(res.headers.get('location')).toBe('/v1/posts/42');
    expect(res.headers.get('x-upstream-marker')).toBe('from-the-service');
    expect(res.headers.getSetCookie()).toEqual(['a=1; Path=/', 'b=2; Path=/']);
    expect(res.headers.get('proxy-authenticate')).toBeNull();
    expect(res.headers.get('keep-alive')).not.toBe('timeout=99, max=7');
    expect(await res.text()).toBe(body);
  });

  it("passes the upstream's 4xx and 5xx error JSON through instead of replacing it", async () => {
    const users = unique('users');
    const conflict = JSON.stringify({ error: { code: 'handle_taken', message: 'the handle ada is taken' } });
    const broken = JSON.stringify({ error: { code: 'internal', message: 'internal error' } });
    const upstream = await startUpstream((request, response) => {
      const [status, text] = request.method === 'POST' ? [409, conflict] : [500, broken];
      response.writeHead(status, { 'content-type': 'application/json' });
      response.end(text);
    });
    const gw = await startGateway({ routes: [{ methods: ['GET', 'POST'], path: '/v1/users', service: users, auth: 'none' }] });
    await register(gw.registry, users, upstream.url);

    const taken = await fetch(`${gw.url}/v1/users`, { method: 'POST', body: '{"handle":"ada"}', headers: { 'content-type': 'application/json' } });
    expect(taken.status).toBe(409);
    expect(await taken.text()).toBe(conflict);

    // A service that answers, even with a 500, is reachable: its answer is the answer.
    const failed = await fetch(`${gw.url}/v1/users`);
    expect(failed.status).toBe(500);
    expect(await failed.text()).toBe(broken);
  });

  it('passes a 204 through with no body and with its headers', async () => {
    const posts = unique('posts');
    const upstream = await startUpstream((_request, response) => {
      response.writeHead(204, { 'x-deleted': '42' });
      response.end();
    });
    const gw = await startGateway({ routes: [{ methods: ['DELETE'], path: '/v1/posts/:id', service: posts, auth: 'none' }] });
    await register(gw.registry, posts, upstream.url);

    const res = await fetch(`${gw.url}/v1/posts/42`, { method: 'DELETE' });

    expect(res.status).toBe(204);
    expect(res.headers.get('x-deleted')).toBe('42');
    expect(await res.text()).toBe('');
    expect(upstream.received.map((r) => r.method)).toEqual(['DELETE']);
  });
});

describe('gateway request ids and forwarding headers', () => {
  async function setup() {
    const posts = unique('posts');
    const upstream = await startUpstream();
    const gw = await startGateway({ routes: [{ methods: ['GET', 'POST'], path: '/v1/posts', service: posts, auth: 'none' }] });
    await register(gw.registry, posts, upstream.url);
    return { gw, upstream };
  }

  it("forwards the caller's valid x-request-id and answers with it", async () => {
    const { gw, upstream } = await setup();
    const id = unique('req');

    const res = await fetch(`${gw.url}/v1/posts`, { headers: { 'x-request-id': id } });

    expect(res.status).toBe(200);
    expect(res.headers.get('x-request-id')).toBe(id);
    expect(upstream.received[0]?.headers['x-request-id']).toBe(id);
  });

  it('replaces a missing or invalid x-request-id with a generated one, the same upstream and in the answer', async () => {
    const { gw, upstream } = await setup();
    const invalid = ['has spaces in it', 'x'.repeat(129), 'semi;colon', 'caf\u00e9'];

    const answers = [await fetch(`${gw.url}/v1/posts`)];
    for (const id of invalid) answers.push(await fetch(`${gw.url}/v1/posts`, { headers: { 'x-request-id': id } }));
    // A body-carrying request as well: its handler runs after the body has been read.
    answers.push(await fetch(`${gw.url}/v1/posts`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json', 'x-request-id': 'bad id' } }));

    expect(upstream.received).toHaveLength(answers.length);
    const ids = answers.map((res, i) => {
      const answered = res.headers.get('x-request-id');
      expect(answered).toMatch(/^[0-9a-f-]{36}$/);
      expect(upstream.received[i]?.headers['x-request-id']).toBe(answered);
      return answered;
    });
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('sends a traceparent that continues the caller trace with a new span', async () => {
    const { gw, upstream } = await setup();
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const callerSpan = '00f067aa0ba902b7';

    await fetch(`${gw.url}/v1/posts`);
    await fetch(`${gw.url}/v1/posts`, { method: 'POST', body: 'x', headers: { 'content-type': 'text/plain', traceparent: `00-${traceId}-${callerSpan}-01` } });

    const [fresh, continued] = upstream.received.map((r) => /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/.exec(String(r.headers.traceparent)));
    expect(fresh).not.toBeNull();
    expect(continued?.[1]).toBe(traceId);
    expect(continued?.[2]).not.toBe(callerSpan);
  });

  it('sets x-forwarded-for, appending to one the caller sent, and x-forwarded-host/proto', async () => {
    const { gw, upstream } = await setup();

    await fetch(`${gw.url}/v1/posts`);
    await fetch(`${gw.url}/v1/posts`, { headers: { 'x-forwarded-for': '203.0.113.7' } });

    const [direct, proxied] = upstream.received;
    expect(direct?.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(proxied?.headers['x-forwarded-for']).toBe('203.0.113.7, 127.0.0.1');
    expect(direct?.headers['x-forwarded-proto']).toBe('http');
    expect(direct?.headers['x-forwarded-host']).toBe(new URL(gw.url).host);
    // The upstream sees its own address as Host, not the gateway's.
    expect(direct?.headers.host).toBe(new URL(upstream.url).host);
  });
});
