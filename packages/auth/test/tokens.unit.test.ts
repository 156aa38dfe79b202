import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  AuthErrorCodes,
  bearerToken,
  createTokenIssuer,
  createTokenVerifier,
  generateSigningKey,
  isAuthError,
  loadOrCreateSigningKey,
  signingKeyFromPem,
  verificationKeyOf,
} from '../src/index.js';

const settings = { issuer: 'agora', audience: 'agora-api' };
const key = generateSigningKey();

function setup(now = () => Date.now()) {
  const issuer = createTokenIssuer({ ...settings, key, ttlSeconds: 60, now });
  const verifier = createTokenVerifier({ ...settings, key: verificationKeyOf(key), now, clockToleranceSeconds: 0 });
  return { issuer, verifier };
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    if (isAuthError(err)) return err.code;
    throw err;
  }
  throw new Error('expected the promise to reject');
}

const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');

describe('access tokens', () => {
  it('verifies a token it issued and returns its principal', async () => {
    const { issuer, verifier } = setup();
    const { token, expiresAt } = await issuer.issue({ userId: '42', handle: 'ada', scopes: ['admin'] });
    const principal = await verifier.verify(token);
    expect(principal).toMatchObject({ userId: '42', handle: 'ada', scopes: ['admin'] });
    expect(principal.expiresAt.getTime()).toBe(expiresAt.getTime());
  });

  it('refuses an expired token with token_expired', async () => {
    let clock = Date.now();
    const { issuer, verifier } = setup(() => clock);
    const { token } = await issuer.issue({ userId: '42', handle: 'ada' });
    clock += 61_000;
    expect(await codeOf(verifier.verify(token))).toBe(AuthErrorCodes.TOKEN_EXPIRED);
  });

  it('refuses a token whose payload was tampered with', async () => {
    const { issuer, verifier } = setup();
    const { token } = await issuer.issue({ userId: '42', handle: 'ada' });
    const [h, , s] = token.split('.');
    const forged = `${h}.${b64({ sub: '1', handle: 'root', iss: 'agora', aud: 'agora-api', exp: 9e9, iat: 1, jti: 'x' })}.${s}`;
    expect(await codeOf(verifier.verify(forged))).toBe(AuthErrorCodes.INVALID_TOKEN);
  });

  it('refuses an unsigned alg:none token', async () => {
    const { verifier } = setup();
    const now = Math.floor(Date.now() / 1000);
    const none = `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ sub: '42', handle: 'ada', iss: 'agora', aud: 'agora-api', iat: now, exp: now + 60, jti: 'x' })}.`;
    expect(await codeOf(verifier.verify(none))).toBe(AuthErrorCodes.INVALID_TOKEN);
  });

  it('refuses a token signed by another key, or for another audience', async () => {
    const { verifier } = setup();
    const other = createTokenIssuer({ ...settings, key: generateSigningKey(), ttlSeconds: 60 });
    expect(await codeOf(verifier.verify((await other.issue({ userId: '1', handle: 'eve' })).token))).toBe(AuthErrorCodes.INVALID_TOKEN);
    const elsewhere = createTokenIssuer({ issuer: 'agora', audience: 'other-api', key, ttlSeconds: 60 });
    expect(await codeOf(verifier.verify((await elsewhere.issue({ userId: '1', handle: 'eve' })).token))).toBe(AuthErrorCodes.INVALID_TOKEN);
  });

  it('refuses garbage', async () => {
    const { verifier } = setup();
    expect(await codeOf(verifier.verify('not.a.token'))).toBe(AuthErrorCodes.INVALID_TOKEN);
  });
});

describe('bearerToken', () => {
  it('reads the token of a Bearer header and nothing else', () => {
    expect(bearerToken('Bearer abc.def.ghi')).toBe('abc.def.ghi');
    expect(bearerToken(undefined)).toBeUndefined();
    expect(() => bearerToken('Basic dXNlcjpwYXNz')).toThrowError(expect.objectContaining({ code: AuthErrorCodes.INVALID_TOKEN }));
  });
});

describe('signing keys', () => {
  const dirs: string[] = [];
  afterAll(async () => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

  it('makes a key once, keeps it private, and reads the same key back', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'agora-keys-'));
    dirs.push(dir);
    const file = join(dir, 'keys', 'jwt.pem');
    const first = await loadOrCreateSigningKey(file);
    const second = await loadOrCreateSigningKey(file);
    expect(second.kid).toBe(first.kid);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(signingKeyFromPem(await readFile(file, 'utf8')).kid).toBe(first.kid);
  });

  it('rejects a key that is not Ed25519', async () => {
    const { generateKeyPairSync } = await import('node:crypto');
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    expect(() => signingKeyFromPem(rsa)).toThrow(/Ed25519/);
  });
});
