import { Type } from '@sinclair/typebox';
import { describe, expect, it } from 'vitest';
import { HINT, KitErrorCodes, type HttpApp, type ValidationIssue } from '../src/index.js';
import { call, errorCode, startHttp } from './helpers.js';

const TEXT_HINT = 'text must be 1 to 10 characters';

/** A route with a strict body and a coerced query string, echoing what the handler received. */
function routes(app: HttpApp): void {
  app.post(
    '/v1/posts',
    {
      schema: {
        body: Type.Object(
          {
            text: Type.String({ minLength: 1, maxLength: 10, [HINT]: TEXT_HINT }),
            count: Type.Integer({ minimum: 0 }),
            tags: Type.Optional(Type.Array(Type.String())),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (request) => ({ body: request.body }),
  );
  app.get(
    '/v1/posts',
    { schema: { querystring: Type.Object({ limit: Type.Integer({ minimum: 1, maximum: 100, default: 20 }), flag: Type.Optional(Type.Boolean()) }) } },
    async (request) => ({ query: request.query }),
  );
  app.get('/v1/posts/:id', { schema: { params: Type.Object({ id: Type.Integer({ minimum: 1 }) }) } }, async (request) => ({ id: request.params.id }));
}

/** The issues of a 400 validation_failed answer. */
function issuesOf(res: { status: number; body: unknown }): ValidationIssue[] {
  expect(res.status).toBe(400);
  expect(errorCode(res.body)).toBe(KitErrorCodes.VALIDATION_FAILED);
  return (res.body as { error: { details: ValidationIssue[] } }).error.details;
}

describe('http kit: validation', () => {
  it('hands a valid body to the handler unchanged', async () => {
    const { url } = await startHttp(routes);
    const res = await call(`${url}/v1/posts`, { body: { text: 'hello', count: 2 } });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ body: { text: 'hello', count: 2 } });
  });

  it('names a missing field', async () => {
    const { url } = await startHttp(routes);
    const issues = issuesOf(await call(`${url}/v1/posts`, { body: { text: 'hello' } }));
    expect(issues.map((i) => i.field)).toEqual(['body.count']);
  });

  it('refuses an extra field rather than dropping it', async () => {
    const { url } = await startHttp(routes);
    const issues = issuesOf(await call(`${url}/v1/posts`, { body: { text: 'hello', count: 1, admin: true } }));
    expect(issues.map((i) => i.field)).toEqual(['body.admin']);
  });

  it('names a field of the wrong type with the plain fact, not the hint', async () => {
    const { url } = await startHttp(routes);
    const issues = issuesOf(await call(`${url}/v1/posts`, { body: { text: 42, count: 1 } }));
    expect(issues.map((i) => i.field)).toEqual(['body.text']);
    expect(issues[0]?.message).not.toBe(TEXT_HINT);
  });

  it('uses the x-hint of the schema as the message of a constraint that failed', async () => {
    const { url } = await startHttp(routes);
    const res = await call(`${url}/v1/posts`, { body: { text: 'far too long for it', count: 1 } });
    const issues = issuesOf(res);
    expect(issues).toEqual([{ field: 'body.text', message: TEXT_HINT }]);
    expect((res.body as { error: { message: string } }).error.message).toBe(TEXT_HINT);
  });

  it('reports every bad field at once', async () => {
    const { url } = await startHttp(routes);
    const issues = issuesOf(await call(`${url}/v1/posts`, { body: { text: '', extra: 1, tags: [1] } }));
    expect(issues.map((i) => i.field).sort()).toEqual(['body.count', 'body.extra', 'body.tags.0', 'body.text']);
  });

  it('refuses an integer sent as a string in the body: bodies are not coerced', async () => {
    const { url } = await startHttp(routes);
    const issues = issuesOf(await call(`${url}/v1/posts`, { body: { text: 'hello', count: '5' } }));
    expect(issues.map((i) => i.field)).toEqual(['body.count']);
  });

  it('refuses a body that is not an object', async () => {
    const { url } = await startHttp(routes);
    const issues = issuesOf(await call(`${url}/v1/posts`, { body: [1, 2] }));
    expect(issues.map((i) => i.field)).toEqual(['body']);
  });

  it('coerces query string integers and booleans, and fills defaults', async () => {
    const { url } = await startHttp(routes);
    const given = await call(`${url}/v1/posts?limit=5&flag=true`);
    const defaulted = await call(`${url}/v1/posts`);
    expect(given.body).toEqual({ query: { limit: 5, flag: true } });
    expect(defaulted.body).toEqual({ query: { limit: 20 } });
  });

  it('names a query string value that is not an integer', async () => {
    const { url } = await startHttp(routes);
    const issues = issuesOf(await call(`${url}/v1/posts?limit=many`));
    expect(issues.map((i) => i.field)).toEqual(['query.limit']);
  });

  it('coerces and checks path parameters', async () => {
    const { url } = await startHttp(routes);
    expect((await call(`${url}/v1/posts/7`)).body).toEqual({ id: 7 });
    const issues = issuesOf(await call(`${url}/v1/posts/0`));
    expect(issues.map((i) => i.field)).toEqual(['params.id']);
  });
});
