import { createTokenIssuer, generateSigningKey } from '@agora/auth';
import { describe, expect, it } from 'vitest';
import type { RouteSpec } from '../src/index.js';
import { errorCode, makeKeys, register, startGateway, startUpstream, TOKENS, unique } from './helpers.js';

const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');

/** An unsigned token with otherwise valid claims: what a forger sends. */
function algNoneToken(): string {
  const now = Math.floor(Date.now() / 1000);
  const claims = { sub: '42', handle: 'ada', iss: TOKENS.issuer, aud: TOKENS.audience, iat: now, exp: now + 60, jti: unique('jti') };
  return `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims)}.`;
}

async function setup(auth: RouteSpec['auth']) {
  const keys = makeKeys();
  const service = unique('posts');
  const upstream = await startUpstream();
  const gw = await startGateway({ routes: [{ methods: ['GET'], path: '/v1/posts', service, auth }], verifier: keys.verifier });
  await register(gw.registry, service, upstream.url);
  const get = (authorization?: string) => fetch(`${gw.url}/v1/posts`, { headers: authorization === undefined ? {} : { authorization } });
  return { keys, upstream, get };
}

describe('gateway auth on a required route', () => {
  it('answers 401 auth_required without a token, with WWW-Authenticate, and does not forward', async () => {
    const { upstream, get } = await setup('required');

    const res = await get();

    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe('Bearer');
    expect(await errorCode(res)).toBe('auth_required');
    expect(upstream.received).toHaveLength(0);
  });

  it('answers 401 invalid_token for garbage, another scheme, an alg:none token and a token of another key', async () => {
    const { upstream, get } = await setup('required');
    const foreign = createTokenIssuer({ ...TOKENS, key: generateSigningKey(), ttlSeconds: 60 });
    const candidates = [
      'Bearer not-a-token',
      'Bearer a.b.c',
      'Basic YWRhOnNlY3JldA==',
      `Bearer ${algNoneToken()}`,
      `Bearer ${(await foreign.issue({ userId: '42', handle: 'ada' })).token}`,
    ];

    for (const authorization of candidates) {
      const res = await get(authorization);
      expect(res.status, authorization).toBe(401);
      expect(await errorCode(res), authorization).toBe('invalid_token');
    }
    expect(upstream.received).toHaveLength(0);
  });

  it('answers 401 token_expired for a token that has expired', async () => {
    const { keys, upstream, get } = await setup('required');
    // Issued ten minutes ago with a one-minute life: well past any clock tolerance.
    const past = createTokenIssuer({ ...TOKENS, key: keys.key, ttlSeconds: 60, now: () => Date.now() - 600_000 });
    const { token } = await past.issue({ userId: '42', handle: 'ada' });

    const res = await get(`Bearer ${token}`);

    expect(res.status).toBe(401);
    expect(await errorCode(res)).toBe('token_expired');
    expect(upstream.received).toHaveLength(0);
  });

  it('forwards a request with a valid token, Authorization header intact', async () => {
    const { keys, upstream, get } = await setup('required');
    const { token } = await keys.issuer.issue({ userId: '42', handle: 'ada' });

    const res = await get(`Bearer ${token}`);

    expect(res.status).toBe(200);
    expect(upstream.received.map((r) => r.headers.authorization)).toEqual([`Bearer ${token}`]);
  });
});

describe('gateway auth on an optional route', () => {
  it('forwards a request without a token, with no Authorization header', async () => {
    const { upstream, get } = await setup('optional');

    const res = await get();

    expect(res.status).toBe(200);
    expect(upstream.received).toHaveLength(1);
    expect(upstream.received[0]?.headers.authorization).toBeUndefined();
  });

  it('answers 401 for a token that is sent but not valid', async () => {
    const { keys, upstream, get } = await setup('optional');
    const past = createTokenIssuer({ ...TOKENS, key: keys.key, ttlSeconds: 60, now: () => Date.now() - 600_000 });

    const garbage = await get('Bearer not-a-token');
    expect(garbage.status).toBe(401);
    expect(await errorCode(garbage)).toBe('invalid_token');
    const expired = await get(`Bearer ${(await past.issue({ userId: '42', handle: 'ada' })).token}`);
    expect(expired.status).toBe(401);
    expect(await errorCode(expired)).toBe('token_expired');
    expect(upstream.received).toHaveLength(0);
  });

  it('forwards a request with a valid token', async () => {
    const { keys, upstream, get } = await setup('optional');
    const { token } = await keys.issuer.issue({ userId: '42', handle: 'ada' });

    const res = await get(`Bearer ${token}`);

    expect(res.status).toBe(200);
    expect(upstream.received[0]?.headers.authorization).toBe(`Bearer ${token}`);
  });
});

describe('gateway auth on a route with auth none', () => {
  it('does not look at the token: garbage and alg:none are forwarded as sent', async () => {
    const { upstream, get } = await setup('none');
    const none = `Bearer ${algNoneToken()}`;

    expect((await get('Bearer not-a-token')).status).toBe(200);
    expect((await get('Basic YWRhOnNlY3JldA==')).status).toBe(200);
    expect((await get(none)).status).toBe(200);

    expect(upstream.received.map((r) => r.headers.authorization)).toEqual(['Bearer not-a-token', 'Basic YWRhOnNlY3JldA==', none]);
  });
});
