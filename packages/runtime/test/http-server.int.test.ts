import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { currentContext } from '@agora/observability';
import { Type } from '@sinclair/typebox';
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { HttpError, KitErrorCodes, UpstreamError } from '../src/index.js';
import { call, errorCode, startHttp } from './helpers.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

describe('http kit: request ids and context', () => {
  it('echoes a valid x-request-id and the handler sees the same id in its context', async () => {
    const { url } = await startHttp((app) => app.get('/whoami', async () => ({ requestId: currentContext()?.requestId })));
    const requestId = `client-${randomUUID()}`;
    const res = await call(`${url}/whoami`, { headers: { 'x-request-id': requestId } });
    expect(res.status).toBe(200);
    expect(res.headers['x-request-id']).toBe(requestId);
    expect(res.body).toEqual({ requestId });
  });

  it('keeps the context in handlers of requests whose body arrives in pieces', async () => {
    // given a handler that reads the context after its body was parsed
    const { url } = await startHttp((app) =>
      app.post('/echo', { schema: { body: Type.Object({ n: Type.Integer() }) } }, async () => ({ requestId: currentContext()?.requestId ?? null })),
    );
    // when the body comes in two chunks, the second one later (parsed outside the request's own tick)
    async function* slowBody() {
      yield Buffer.from('{"n":');
      await sleep(50);
      yield Buffer.from('1}');
    }
    const requestId = `body-${randomUUID()}`;
    const res = await request(`${url}/echo`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': requestId },
      body: Readable.from(slowBody()),
    });
    // then the handler still runs in the request's context
    expect(res.statusCode).toBe(200);
    expect(await res.body.json()).toEqual({ requestId });
  });

  it('makes a new id when the caller sends none or an unsafe one', async () => {
    const { url } = await startHttp((app) => app.get('/whoami', async () => ({ requestId: currentContext()?.requestId })));
    const none = await call(`${url}/whoami`);
    const tooLong = await call(`${url}/whoami`, { headers: { 'x-request-id': 'x'.repeat(200) } });
    for (const res of [none, tooLong]) {
      expect(res.headers['x-request-id']).toMatch(UUID);
      expect(res.body).toEqual({ requestId: res.headers['x-request-id'] });
    }
    expect(none.headers['x-request-id']).not.toBe(tooLong.headers['x-request-id']);
  });

  it('continues the trace of an incoming traceparent', async () => {
    const { url } = await startHttp((app) => app.get('/trace', async () => ({ traceId: currentContext()?.traceId })));
    const traceId = randomUUID().replaceAll('-', '');
    const res = await call(`${url}/trace`, { headers: { traceparent: `00-${traceId}-${'a'.repeat(16)}-01` } });
    expect(res.body).toEqual({ traceId });
  });
});

describe('http kit: error answers', () => {
  it('answers an unknown route with 404 not_found', async () => {
    const { url } = await startHttp();
    const res = await call(`${url}/nowhere?x=1`);
    expect(res.status).toBe(404);
    expect(errorCode(res.body)).toBe(KitErrorCodes.NOT_FOUND);
  });

  it('keeps the status, code and details of a thrown HttpError', async () => {
    const details = { handle: 'ada' };
    const { url } = await startHttp((app) =>
      app.get('/taken', async () => {
        throw new HttpError(409, 'handle_taken', 'that handle is taken', details);
      }),
    );
    const res = await call(`${url}/taken`);
    expect(res.status).toBe(409);
    expect(res.body).toEqual({ error: { code: 'handle_taken', message: expect.any(String), details } });
  });

  it('answers an unexpected error with a bare 500 internal, without its message or stack', async () => {
    const secret = `db password is ${randomUUID()}`;
    const { url } = await startHttp((app) =>
      app.get('/boom', async () => {
        throw new Error(secret);
      }),
    );
    const res = await call(`${url}/boom`);
    expect(res.status).toBe(500);
    expect(errorCode(res.body)).toBe(KitErrorCodes.INTERNAL);
    expect(Object.keys((res.body as { error: object }).error)).toEqual(['code', 'message']);
    expect(res.text).not.toContain(secret);
    expect(res.text).not.toContain('.ts:');
    expect(res.headers['x-request-id']).toMatch(UUID);
  });

  it('answers invalid JSON with 400 invalid_json', async () => {
    const { url } = await startHttp((app) => app.post('/echo', async (request) => request.body));
    const res = await call(`${url}/echo`, { body: '{"text": ', headers: { 'content-type': 'application/json' } });
    expect(res.status).toBe(400);
    expect(errorCode(res.body)).toBe(KitErrorCodes.INVALID_JSON);
  });

  it('answers an empty body sent as JSON with 400 invalid_json', async () => {
    const { url } = await startHttp((app) => app.post('/echo', async (request) => request.body ?? null));
    const res = await call(`${url}/echo`, { method: 'POST', body: '', headers: { 'content-type': 'application/json' } });
    expect(res.status).toBe(400);
    expect(errorCode(res.body)).toBe(KitErrorCodes.INVALID_JSON);
  });

  it('answers a body over the limit with 413 payload_too_large', async () => {
    const { url } = await startHttp((app) => app.post('/echo', async (request) => request.body), { bodyLimitBytes: 1024 });
    const small = await call(`${url}/echo`, { body: { text: 'a'.repeat(100) } });
    const large = await call(`${url}/echo`, { body: { text: 'a'.repeat(2048) } });
    expect(small.status).toBe(200);
    expect(large.status).toBe(413);
    expect(errorCode(large.body)).toBe(KitErrorCodes.PAYLOAD_TOO_LARGE);
  });

  it('refuses a text/plain body with 415 unsupported_media_type', async () => {
    const { url } = await startHttp((app) => app.post('/echo', async (request) => ({ got: request.body })));
    const res = await call(`${url}/echo`, { body: 'hello', headers: { 'content-type': 'text/plain' } });
    expect(res.status).toBe(415);
    expect(errorCode(res.body)).toBe(KitErrorCodes.UNSUPPORTED_MEDIA_TYPE);
  });
});

describe('http kit: health, readiness and metrics', () => {
  it('answers /healthz with 200', async () => {
    const { url } = await startHttp();
    const res = await call(`${url}/healthz`);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: 'ok' });
  });

  it('answers /readyz with 503 naming the failing check', async () => {
    const { url } = await startHttp(undefined, {
      readiness: [
        { name: 'db', check: async () => undefined },
        { name: 'identity', check: () => Promise.reject(new Error('connection refused')) },
      ],
    });
    const res = await call(`${url}/readyz`);
    expect(res.status).toBe(503);
    expect(res.body).toMatchObject({ status: 'fail', checks: { db: { status: 'ok' }, identity: { status: 'fail', error: expect.any(String) } } });
  });

  it('answers /readyz with 200 when every check passes', async () => {
    const { url } = await startHttp(undefined, { readiness: [{ name: 'db', check: async () => undefined }] });
    const res = await call(`${url}/readyz`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: 'ok', checks: { db: { status: 'ok' } } });
  });

  it('counts requests in /metrics by route pattern, not by url', async () => {
    const { url, svc } = await startHttp((app) => app.get('/v1/posts/:id', async () => ({ ok: true })));
    await call(`${url}/v1/posts/1`);
    await call(`${url}/v1/posts/2`);
    await call(`${url}/nowhere`);
    const res = await call(`${url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toContain('text/plain');
    const service = svc.component.name.replace(/-http$/, '');
    expect(res.text).toContain(`http_requests_total{service="${service}",method="GET",route="/v1/posts/:id",status="200"} 2`);
    expect(res.text).toContain(`http_requests_total{service="${service}",method="GET",route="unmatched",status="404"} 1`);
    expect(res.text).not.toContain('route="/v1/posts/1"');
  });

  it('documents the routes it serves in /openapi.json, and not its own endpoints', async () => {
    const { url } = await startHttp((app) => app.get('/v1/things', async () => []));
    const res = await call(`${url}/openapi.json`);
    expect(res.status).toBe(200);
    const paths = Object.keys((res.body as { paths: object }).paths);
    expect(paths).toContain('/v1/things');
    expect(paths).not.toContain('/healthz');
  });
});

describe('http kit: failures of the services a handler depends on', () => {
  it('answers 503 upstream_unavailable and 504 upstream_timeout, never a bare 500', async () => {
    const { url } = await startHttp((app) => {
      app.get('/down', async () => {
        throw new UpstreamError('upstream_unavailable', 'identity', 'identity could not be reached');
      });
      app.get('/slow', async () => {
        throw new UpstreamError('upstream_timeout', 'identity', 'identity did not answer');
      });
      app.get('/broken', async () => {
        throw new UpstreamError('upstream_error', 'identity', 'identity answered 500');
      });
    });
    const down = await call(`${url}/down`);
    expect({ status: down.status, code: errorCode(down.body) }).toEqual({ status: 503, code: 'upstream_unavailable' });
    const slow = await call(`${url}/slow`);
    expect({ status: slow.status, code: errorCode(slow.body) }).toEqual({ status: 504, code: 'upstream_timeout' });
    const broken = await call(`${url}/broken`);
    expect({ status: broken.status, code: errorCode(broken.body) }).toEqual({ status: 503, code: 'upstream_unavailable' });
  });
});
