import { createTokenIssuer, createTokenVerifier, generateSigningKey, verificationKeyOf } from '@agora/auth';
import { describe, expect, it } from 'vitest';
import { KitErrorCodes, type HttpApp } from '../src/index.js';
import { call, errorCode, startHttp, uniqueName } from './helpers.js';

const settings = { issuer: 'agora-test', audience: 'agora-test-api' };
const key = generateSigningKey();
const issuer = createTokenIssuer({ ...settings, key, ttlSeconds: 60 });
const verifier = createTokenVerifier({ ...settings, key: verificationKeyOf(key) });

function routes(app: HttpApp): void {
  app.get('/v1/me', { preHandler: app.authenticate }, async (request) => ({ principal: request.principal }));
  app.get('/v1/public', async (request) => ({ principal: request.principal ?? null }));
}

describe('http kit: app.authenticate', () => {
  it('answers 401 auth_required with www-authenticate: Bearer when no token is sent', async () => {
    const { url } = await startHttp(routes, { verifier });
    const res = await call(`${url}/v1/me`);
    expect(res.status).toBe(401);
    expect(errorCode(res.body)).toBe(KitErrorCodes.AUTH_REQUIRED);
    expect(res.headers['www-authenticate']).toBe('Bearer');
  });

  it.each([
    ['a token that is not a JWT', 'Bearer not.a.token'],
    ['an Authorization header of another scheme', 'Basic YWRhOnNlY3JldA=='],
  ])('answers 401 invalid_token for %s', async (_case, authorization) => {
    const { url } = await startHttp(routes, { verifier });
    const res = await call(`${url}/v1/me`, { headers: { authorization } });
    expect(res.status).toBe(401);
    expect(errorCode(res.body)).toBe(KitErrorCodes.INVALID_TOKEN);
    expect(res.headers['www-authenticate']).toBe('Bearer');
  });

  it('answers 401 invalid_token for a token signed by another key', async () => {
    const { url } = await startHttp(routes, { verifier });
    const forger = createTokenIssuer({ ...settings, key: generateSigningKey(), ttlSeconds: 60 });
    const { token } = await forger.issue({ userId: '1', handle: 'mallory' });
    const res = await call(`${url}/v1/me`, { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(401);
    expect(errorCode(res.body)).toBe(KitErrorCodes.INVALID_TOKEN);
  });

  it('answers 401 token_expired for an expired token', async () => {
    const { url } = await startHttp(routes, { verifier });
    const past = createTokenIssuer({ ...settings, key, ttlSeconds: 60, now: () => Date.now() - 3_600_000 });
    const { token } = await past.issue({ userId: '1', handle: 'ada' });
    const res = await call(`${url}/v1/me`, { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(401);
    expect(errorCode(res.body)).toBe(KitErrorCodes.TOKEN_EXPIRED);
  });

  it('sets the principal of a valid token', async () => {
    // given a service with a verifier and a token it trusts
    const { url } = await startHttp(routes, { verifier });
    const handle = uniqueName('ada');
    const { token } = await issuer.issue({ userId: '42', handle, scopes: ['posts:write'] });
    // when the token is sent
    const res = await call(`${url}/v1/me`, { headers: { authorization: `Bearer ${token}` } });
    // then the handler sees who it speaks for
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ principal: expect.objectContaining({ userId: '42', handle, scopes: ['posts:write'] }) });
  });

  it('leaves routes without authenticate open and without a principal', async () => {
    const { url } = await startHttp(routes, { verifier });
    const res = await call(`${url}/v1/public`);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ principal: null });
  });
});
