import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTokenIssuer, loadOrCreateSigningKey } from '@agora/auth';
import { buildEmbeddedSystem, readAgoraConfig, type RunningSystem } from '@agora/cli';
import { createTestDatabase, type TestDatabase } from '@agora/db/testing';
import { createLogger } from '@agora/observability';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { apiClient, codeOf } from '../support/api.js';

// The whole system in this process, against a database of its own on the test server:
// every request goes user -> gateway -> service -> PostgreSQL and back.
let db: TestDatabase;
let dataDir: string;
let system: RunningSystem;
const api = apiClient(() => system.gatewayUrl());

beforeAll(async () => {
  db = await createTestDatabase(inject('databaseUrl'), 'e2e');
  dataDir = await mkdtemp(join(tmpdir(), 'agora-e2e-'));
  const config = readAgoraConfig({
    env: {},
    overrides: { 'database.url': db.url, 'gateway.port': 0, 'gateway.host': '127.0.0.1', dataDir, logLevel: 'silent', 'gateway.bodyLimitBytes': 16 * 1024, 'auth.adminHandles': ['ada'] },
  });
  system = await buildEmbeddedSystem(config, createLogger({ name: 'e2e', level: 'silent' }));
  await system.host.start();
});

afterAll(async () => {
  await system?.host.stop();
  await db?.drop();
  await rm(dataDir, { recursive: true, force: true });
});

const password = 'correct horse battery';

async function signup(handle: string) {
  const res = await api<{ user: { id: string; handle: string }; token: string }>('POST', '/v1/auth/signup', {
    body: { handle, email: `${handle}@example.org`, password },
  });
  expect(res.status).toBe(201);
  return res.body;
}

describe('the walkthrough of the README', () => {
  it('signs up, logs in, follows, posts, reads, unfollows and deletes through the gateway', async () => {
    const ada = await signup('ada');
    expect(ada.user).toMatchObject({ handle: 'ada', email: 'ada@example.org' });
    await signup('grace');

    const login = await api<{ token: string }>('POST', '/v1/auth/login', { body: { login: 'ada', password } });
    expect(login.status).toBe(200);
    const token = login.body.token;
    const byEmail = await api('POST', '/v1/auth/login', { body: { login: 'ADA@example.org', password } });
    expect(byEmail.status).toBe(200);

    const me = await api<{ user: { id: string; handle: string } }>('GET', '/v1/me', { token });
    expect(me.status).toBe(200);
    expect(me.body.user).toMatchObject({ id: ada.user.id, handle: 'ada' });

    const follow = await api('POST', '/v1/users/grace/follow', { token });
    expect(follow).toMatchObject({ status: 200, body: { following: true, changed: true } });
    const again = await api('POST', '/v1/users/grace/follow', { token });
    expect(again).toMatchObject({ status: 200, body: { following: true, changed: false } });

    const created = await api<{ post: { id: string; text: string; author: { handle: string } } }>('POST', '/v1/posts', { token, body: { text: 'hello agora' } });
    expect(created.status).toBe(201);
    expect(created.body.post).toMatchObject({ text: 'hello agora', author: { handle: 'ada' } });
    const postId = created.body.post.id;

    const fetched = await api('GET', `/v1/posts/${postId}`);
    expect(fetched).toMatchObject({ status: 200, body: { post: { id: postId, text: 'hello agora' } } });

    const grace = await api('GET', '/v1/users/grace');
    expect(grace).toMatchObject({ status: 200, body: { user: { handle: 'grace', followers: 1, following: 0 } } });
    const adaProfile = await api('GET', '/v1/users/ada');
    expect(adaProfile).toMatchObject({ status: 200, body: { user: { handle: 'ada', following: 1, posts: 1 } } });

    const unfollow = await api('DELETE', '/v1/users/grace/follow', { token });
    expect(unfollow).toMatchObject({ status: 200, body: { following: false, changed: true } });
    const unfollowAgain = await api('DELETE', '/v1/users/grace/follow', { token });
    expect(unfollowAgain).toMatchObject({ status: 200, body: { following: false, changed: false } });
    expect((await api('GET', '/v1/users/grace')).body).toMatchObject({ user: { followers: 0 } });

    expect((await api('DELETE', `/v1/posts/${postId}`, { token })).status).toBe(204);
    expect(codeOf(await api('GET', `/v1/posts/${postId}`))).toBe('not_found');
    expect((await api('GET', '/v1/users/ada')).body).toMatchObject({ user: { posts: 0 } });
  });

  it('publishes what happened as events through the outbox, each once, with the envelope of DESIGN.md', async () => {
    const seen: { type: string; key?: string; data: Record<string, unknown> }[] = [];
    const transport = system.transport();
    const consumers = await Promise.all(
      ['social.posts', 'social.follows'].map((topic) =>
        transport.consume(
          { topic, group: `e2e-${topic}`, maxInFlight: 4, visibilityTimeoutMs: 5000, redelivery: { maxAttempts: 3, backoffMs: () => 10 }, startFrom: 'earliest' },
          async (delivery) => void seen.push(JSON.parse(delivery.message.body) as (typeof seen)[number]),
        ),
      ),
    );
    const { token } = (await api<{ token: string }>('POST', '/v1/auth/login', { body: { login: 'ada', password } })).body;
    const { body } = await api<{ post: { id: string } }>('POST', '/v1/posts', { token, body: { text: 'an event' } });
    await api('POST', '/v1/users/grace/follow', { token });
    const deadline = Date.now() + 10_000;
    const arrived = () =>
      seen.some((e) => e.type === 'social.post.created' && e.data.postId === body.post.id) && seen.filter((e) => e.type.startsWith('social.follow.')).length >= 3;
    while (!arrived() && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    await Promise.all(consumers.map((c) => c.stop()));
    const created = seen.filter((e) => e.type === 'social.post.created' && e.data.postId === body.post.id);
    expect(created).toHaveLength(1);
    expect(created[0]).toMatchObject({ version: 1, source: 'social', data: { authorHandle: 'ada', text: 'an event' } });
    expect(created[0]!.key).toBe(created[0]!.data.authorId);
    // the walkthrough's follow, unfollow, and this follow: in order for their key
    const follows = seen.filter((e) => e.type.startsWith('social.follow.')).map((e) => e.type);
    expect(follows.slice(-3)).toEqual(['social.follow.added', 'social.follow.removed', 'social.follow.added']);
  });

  it('lists, shows, replays and purges dead letters at /admin/dlq and with agora dlq', async () => {
    // given a consumer that dead-letters what it gets
    const transport = system.transport();
    const topic = `e2e.poison.${Date.now()}`;
    await transport.declareTopic({ name: topic });
    await transport.declareGroup(topic, 'doomed');
    let deliveries = 0;
    const consumer = await transport.consume(
      { topic, group: 'doomed', maxInFlight: 1, visibilityTimeoutMs: 5000, redelivery: { maxAttempts: 2, backoffMs: () => 10 } },
      async (delivery) => {
        deliveries++;
        await delivery.deadLetter('poison for the test');
      },
    );
    await transport.publish(topic, [{ id: `poison-${Date.now()}`, headers: {}, body: '{}' }]);
    const admin = (await api<{ token: string }>('POST', '/v1/auth/login', { body: { login: 'ada', password } })).body.token;
    type Listed = { deadLetters: { id: string; errors: { error: string }[] }[] };
    let listed = await api<Listed>('GET', `/admin/dlq?topic=${topic}`, { token: admin });
    for (let i = 0; i < 100 && listed.body.deadLetters.length === 0; i++) {
      await new Promise((r) => setTimeout(r, 50));
      listed = await api<Listed>('GET', `/admin/dlq?topic=${topic}`, { token: admin });
    }
    expect(listed.status).toBe(200);
    const [entry] = listed.body.deadLetters;
    expect(entry?.errors.map((e) => e.error)).toEqual(['poison for the test']);

    // the CLI sees the same, through the gateway
    const cli = async (...args: string[]) => {
      const { dlq } = await import('../../apps/cli/src/dlq.js');
      let out = '';
      const code = await dlq(args, { AGORA_GATEWAY_URL: system.gatewayUrl(), AGORA_TOKEN: admin }, { write: (t) => void (out += t) }, { write: (t) => void (out += t) });
      return { code, out };
    };
    expect(await cli('ls', '--topic', topic)).toMatchObject({ code: 0, out: expect.stringContaining(entry!.id) });
    expect(await cli('show', entry!.id)).toMatchObject({ code: 0, out: expect.stringContaining('poison for the test') });
    expect(await cli('replay', entry!.id)).toMatchObject({ code: 0 });
    for (let i = 0; i < 100 && deliveries < 2; i++) await new Promise((r) => setTimeout(r, 50));
    expect(deliveries).toBe(2); // replayed, and dead-lettered again by the same consumer
    await consumer.stop();
    expect(await cli('purge', '--topic', topic)).toMatchObject({ code: 0, out: expect.stringMatching(/purged [1-9]/) });
    expect((await api<Listed>('GET', `/admin/dlq?topic=${topic}`, { token: admin })).body.deadLetters).toEqual([]);

    // bad input and missing rights are 4xx with codes
    expect(codeOf(await api('GET', '/admin/dlq/nope-404', { token: admin }))).toBe('not_found');
    expect(codeOf(await api('GET', '/admin/dlq?limit=0', { token: admin }))).toBe('validation_failed');
    expect(codeOf(await api('DELETE', '/admin/dlq', { token: admin }))).toBe('validation_failed');
    expect(codeOf(await api('GET', '/admin/dlq'))).toBe('auth_required');
    expect(await cli('purge')).toMatchObject({ code: 2 });
  });

  it('carries one request id from the caller through the gateway and back', async () => {
    const res = await api('GET', '/v1/users/ada', { headers: { 'x-request-id': 'walkthrough-42' } });
    expect(res.headers.get('x-request-id')).toBe('walkthrough-42');
  });

  it('lists the circuits of every instance at /admin/circuits, for the admin handles only', async () => {
    const admin = await api<{ token: string }>('POST', '/v1/auth/login', { body: { login: 'ada', password } });
    const circuits = await api<{ circuits: { service: string; state: string }[] }>('GET', '/admin/circuits', { token: admin.body.token });
    expect(circuits.status).toBe(200);
    expect(circuits.body.circuits.map((c) => `${c.service}:${c.state}`).sort()).toEqual(['identity:closed', 'social:closed']);
    const grace = await api<{ token: string }>('POST', '/v1/auth/login', { body: { login: 'grace', password } });
    const refused = await api('GET', '/admin/circuits', { token: grace.body.token });
    expect({ status: refused.status, code: codeOf(refused) }).toEqual({ status: 403, code: 'forbidden' });
  });

  it('serves the merged OpenAPI document at /docs', async () => {
    const docs = await api<{ paths: Record<string, Record<string, unknown>> }>('GET', '/docs');
    expect(docs.status).toBe(200);
    expect(Object.keys(docs.body.paths)).toEqual(
      expect.arrayContaining(['/v1/auth/signup', '/v1/auth/login', '/v1/me', '/v1/users/{handle}', '/v1/users/{handle}/follow', '/v1/posts', '/v1/posts/{id}']),
    );
    expect(docs.body.paths['/v1/posts/{id}']).toHaveProperty('delete');
    expect(Object.keys(docs.body.paths).some((p) => p.startsWith('/internal'))).toBe(false);
  });

  it('reports ready, healthy and measured', async () => {
    expect((await api('GET', '/healthz')).status).toBe(200);
    expect((await api('GET', '/readyz')).status).toBe(200);
    const metrics = await fetch(new URL('/metrics', system.gatewayUrl())).then((r) => r.text());
    expect(metrics).toMatch(/http_requests_total\{[^}]*service="gateway"[^}]*route="\/v1\/users\/:handle"/);
    expect(metrics).toMatch(/http_requests_total\{[^}]*service="social"/);
    expect(metrics).toMatch(/db_pool_connections\{service="social",state="max"\} 10/);
    expect(metrics).toMatch(/gateway_upstream_requests_total\{service="identity",outcome="ok"\}/);
    expect(metrics).toMatch(/bus_outbox_relayed_total\{service="social"\} [1-9]/);
    expect(metrics).toMatch(/bus_outbox_backlog\{service="social"\} \d/);
  });
});

describe('bad input gets a 4xx with a stable code, never a 5xx', () => {
  let token: string;
  let otherToken: string;
  beforeAll(async () => {
    token = (await signup('bea')).token;
    otherToken = (await signup('cyd')).token;
  });

  const signupWith = (body: Record<string, unknown>) => api('POST', '/v1/auth/signup', { body });
  const valid = { handle: 'newcomer', email: 'newcomer@example.org', password };

  it.each([
    ['malformed JSON', () => api('POST', '/v1/auth/signup', { raw: '{"handle": "x",' }), 400, 'invalid_json'],
    ['an empty JSON body', () => api('POST', '/v1/auth/signup', { raw: '' }), 400, 'invalid_json'],
    ['a missing field', () => signupWith({ handle: 'newcomer', password }), 400, 'validation_failed'],
    ['an extra field', () => signupWith({ ...valid, admin: true }), 400, 'validation_failed'],
    ['a wrong type', () => signupWith({ ...valid, handle: 12345 }), 400, 'validation_failed'],
    ['a handle with capitals', () => signupWith({ ...valid, handle: 'Newcomer' }), 400, 'validation_failed'],
    ['a handle too short', () => signupWith({ ...valid, handle: 'ab' }), 400, 'validation_failed'],
    ['a handle too long', () => signupWith({ ...valid, handle: 'a'.repeat(31) }), 400, 'validation_failed'],
    ['a password under 8 characters', () => signupWith({ ...valid, password: 'short' }), 400, 'validation_failed'],
    ['an email that is not one', () => signupWith({ ...valid, email: 'not-an-email' }), 400, 'validation_failed'],
    ['a text body', () => api('POST', '/v1/auth/signup', { raw: 'handle=x', headers: { 'content-type': 'text/plain' } }), 415, 'unsupported_media_type'],
  ])('signup with %s', async (_name, send, status, code) => {
    const res = await send();
    expect(res.status).toBe(status);
    expect(codeOf(res)).toBe(code);
    expect(typeof (res.body as { error: { message: string } }).error.message).toBe('string');
  });

  it('names the offending field in the details', async () => {
    const res = await signupWith({ ...valid, handle: 'Bad Handle!' });
    expect((res.body as { error: { details: { field: string }[] } }).error.details.map((d) => d.field)).toEqual(['body.handle']);
  });

  it('refuses a duplicate handle or email with 409', async () => {
    expect(codeOf(await signupWith({ ...valid, handle: 'bea' }))).toBe('handle_taken');
    expect(codeOf(await signupWith({ ...valid, email: 'BEA@example.org' }))).toBe('email_taken');
  });

  it('answers a wrong password and an unknown user alike', async () => {
    const wrong = await api('POST', '/v1/auth/login', { body: { login: 'bea', password: 'not the password' } });
    const nobody = await api('POST', '/v1/auth/login', { body: { login: 'nobody_here', password } });
    expect(wrong.status).toBe(401);
    expect(nobody.status).toBe(401);
    expect(codeOf(wrong)).toBe('invalid_credentials');
    expect(wrong.body).toEqual(nobody.body);
  });

  it('refuses requests without a valid token', async () => {
    const key = await loadOrCreateSigningKey(join(dataDir, 'keys', 'jwt-ed25519.pem'));
    const past = Date.now() - 2 * 3600_000;
    const expired = (await createTokenIssuer({ key, issuer: 'agora', audience: 'agora-api', ttlSeconds: 60, now: () => past }).issue({ userId: '1', handle: 'bea' })).token;
    const [header, , signature] = token.split('.');
    const tampered = `${header}.${Buffer.from(JSON.stringify({ sub: '1', handle: 'root', iss: 'agora', aud: 'agora-api', exp: 9999999999, iat: 1, jti: 'x' })).toString('base64url')}.${signature}`;
    const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const unsigned = `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ sub: '1', handle: 'bea', iss: 'agora', aud: 'agora-api', exp: 9999999999, iat: 1, jti: 'x' })}.`;

    const cases: [string | undefined, string][] = [
      [undefined, 'auth_required'],
      [expired, 'token_expired'],
      [tampered, 'invalid_token'],
      [unsigned, 'invalid_token'],
      ['garbage', 'invalid_token'],
    ];
    for (const [bad, code] of cases) {
      for (const [method, path] of [['GET', '/v1/me'], ['POST', '/v1/posts'], ['POST', '/v1/users/cyd/follow']] as const) {
        const res = await api(method, path, { ...(bad === undefined ? {} : { token: bad }), ...(method === 'POST' ? { body: { text: 'x' } } : {}) });
        expect({ path, status: res.status, code: codeOf(res) }).toEqual({ path, status: 401, code });
        expect(res.headers.get('www-authenticate')).toBe('Bearer');
      }
    }
  });

  it('refuses post texts that are empty, blank or over 500 characters', async () => {
    for (const text of ['', '   ', 'x'.repeat(501)]) {
      const res = await api('POST', '/v1/posts', { token, body: { text } });
      expect({ status: res.status, code: codeOf(res) }).toEqual({ status: 400, code: 'validation_failed' });
    }
    expect((await api('POST', '/v1/posts', { token, body: { text: 'é'.repeat(500) } })).status).toBe(201);
  });

  it('lets only the author delete a post', async () => {
    const { body } = await api<{ post: { id: string } }>('POST', '/v1/posts', { token, body: { text: 'mine' } });
    const res = await api('DELETE', `/v1/posts/${body.post.id}`, { token: otherToken });
    expect({ status: res.status, code: codeOf(res) }).toEqual({ status: 403, code: 'not_author' });
    expect((await api('GET', `/v1/posts/${body.post.id}`)).status).toBe(200);
  });

  it('answers 404 for unknown routes, users and posts, and 400 for malformed ids', async () => {
    expect(codeOf(await api('GET', '/v1/nothing-here'))).toBe('not_found');
    expect((await api('GET', '/v1/nothing-here')).status).toBe(404);
    expect((await api('GET', '/v1/users/nobody_at_all')).status).toBe(404);
    expect((await api('POST', '/v1/users/nobody_at_all/follow', { token })).status).toBe(404);
    expect((await api('GET', '/v1/posts/999999999999')).status).toBe(404);
    expect((await api('DELETE', '/v1/posts/999999999999', { token })).status).toBe(404);
    expect(codeOf(await api('GET', '/v1/posts/not-a-number'))).toBe('validation_failed');
    expect(codeOf(await api('GET', '/v1/users/NOT_A_HANDLE'))).toBe('validation_failed');
  });

  it('refuses to follow yourself', async () => {
    const res = await api('POST', '/v1/users/bea/follow', { token });
    expect({ status: res.status, code: codeOf(res) }).toEqual({ status: 400, code: 'self_follow' });
  });

  it('refuses bodies over the limit with 413 before they reach a service', async () => {
    const res = await api('POST', '/v1/posts', { token, raw: JSON.stringify({ text: 'x'.repeat(20 * 1024) }) });
    expect({ status: res.status, code: codeOf(res) }).toEqual({ status: 413, code: 'payload_too_large' });
  });
});

describe('concurrent writes keep counters exact', () => {
  it('twenty concurrent follows of one user by one user count once; mutual follows do not deadlock', async () => {
    const a = await signup('dee');
    const b = await signup('eli');
    const both = await Promise.all([
      ...Array.from({ length: 20 }, () => api('POST', '/v1/users/eli/follow', { token: a.token })),
      ...Array.from({ length: 20 }, () => api('POST', '/v1/users/dee/follow', { token: b.token })),
    ]);
    expect(both.every((r) => r.status === 200)).toBe(true);
    expect(both.filter((r) => (r.body as { changed: boolean }).changed)).toHaveLength(2);
    expect((await api('GET', '/v1/users/eli')).body).toMatchObject({ user: { followers: 1, following: 1 } });
    expect((await api('GET', '/v1/users/dee')).body).toMatchObject({ user: { followers: 1, following: 1 } });
  });
});
