import { describe, expect, it } from 'vitest';
import { register, startGateway, startUpstream, unique, type UpstreamHandler } from './helpers.js';

/** An upstream that serves `doc` as its /openapi.json and 404s everything else. */
const serving =
  (doc: object): UpstreamHandler =>
  (request, response) => {
    const found = request.method === 'GET' && request.url === '/openapi.json';
    response.writeHead(found ? 200 : 404, { 'content-type': 'application/json' });
    response.end(JSON.stringify(found ? doc : { error: { code: 'not_found', message: 'no such route' } }));
  };

const op = (operationId: string) => ({ operationId, responses: { '200': { description: 'ok' } } });

interface MergedDoc {
  openapi: string;
  info: { title: string; version: string; 'x-missing-services'?: string[] };
  paths: Record<string, Record<string, { operationId?: string }>>;
  components: { schemas: Record<string, unknown> };
}

describe('gateway /docs', () => {
  it("merges the services' documents, keeping only routed operations, and lists missing services", async () => {
    const posts = unique('posts');
    const users = unique('users');
    const search = unique('search');
    const postsUpstream = await startUpstream(
      serving({
        openapi: '3.1.0',
        info: { title: 'posts', version: '1' },
        paths: {
          '/v1/posts': { post: op('createPost'), get: op('listPosts') },
          '/v1/posts/{id}': { get: op('getPost'), delete: op('deletePost') },
          '/internal/reindex': { post: op('reindex') },
        },
        components: { schemas: { Post: { type: 'object' } } },
      }),
    );
    const usersUpstream = await startUpstream(
      serving({
        openapi: '3.1.0',
        info: { title: 'users', version: '1' },
        paths: { '/v1/users/{handle}': { get: op('getUser') }, '/internal/users/purge': { delete: op('purge') } },
        components: { schemas: { User: { type: 'object' } } },
      }),
    );
    const gw = await startGateway({
      routes: [
        { methods: ['POST'], path: '/v1/posts', service: posts, auth: 'required' },
        { methods: ['GET'], path: '/v1/posts/:id', service: posts, auth: 'optional' },
        { methods: ['GET'], path: '/v1/users/:handle', service: users, auth: 'none' },
        { methods: ['GET'], path: '/v1/search', service: search, auth: 'none' },
      ],
    });
    await register(gw.registry, posts, postsUpstream.url);
    await register(gw.registry, users, usersUpstream.url);

    const res = await fetch(`${gw.url}/docs`);
    expect(res.status).toBe(200);
    const doc = (await res.json()) as MergedDoc;

    expect(doc.openapi).toBe('3.1.0');
    expect(doc.paths).toEqual({
      '/v1/posts': { post: op('createPost') },
      '/v1/posts/{id}': { get: op('getPost') },
      '/v1/users/{handle}': { get: op('getUser') },
    });
    expect(Object.keys(doc.paths)).not.toContain('/internal/reindex');
    expect(doc.components.schemas).toEqual({ Post: { type: 'object' }, User: { type: 'object' } });
    expect(doc.info['x-missing-services']).toEqual([search]);

    const again = await fetch(`${gw.url}/docs/openapi.json`);
    expect(await again.json()).toEqual(doc);
  });

  it('lists as missing a service whose /openapi.json answers with an error', async () => {
    const posts = unique('posts');
    const upstream = await startUpstream((_request, response) => {
      response.writeHead(503, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ error: { code: 'unavailable', message: 'draining' } }));
    });
    const gw = await startGateway({ routes: [{ methods: ['GET'], path: '/v1/posts/:id', service: posts, auth: 'none' }] });
    await register(gw.registry, posts, upstream.url);

    const doc = (await (await fetch(`${gw.url}/docs`)).json()) as MergedDoc;

    expect(doc.paths).toEqual({});
    expect(doc.info['x-missing-services']).toEqual([posts]);
  });

  it('has no x-missing-services when every service answered', async () => {
    const posts = unique('posts');
    const upstream = await startUpstream(serving({ openapi: '3.1.0', paths: { '/v1/posts/{id}': { get: op('getPost') } } }));
    const gw = await startGateway({ routes: [{ methods: ['GET'], path: '/v1/posts/:id', service: posts, auth: 'none' }] });
    await register(gw.registry, posts, upstream.url);

    const doc = (await (await fetch(`${gw.url}/docs`)).json()) as MergedDoc;

    expect(doc.paths).toEqual({ '/v1/posts/{id}': { get: op('getPost') } });
    expect(doc.info).not.toHaveProperty('x-missing-services');
  });
});
