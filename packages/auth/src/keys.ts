import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

/**
 * An Ed25519 key pair used to sign access tokens. The private half stays with the issuer
 * (identity); everyone else verifies with the public half, so a compromised verifier
 * cannot mint tokens.
 */
export interface SigningKey {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  /** Key id written in each token header (`kid`), derived from the public key. */
  readonly kid: string;
}

export interface VerificationKey {
  readonly publicKey: KeyObject;
  readonly kid: string;
}

function kidOf(publicKey: KeyObject): string {
  const der = publicKey.export({ format: 'der', type: 'spki' });
  return createHash('sha256').update(der).digest('base64url').slice(0, 16);
}

/**
 * Reads a PKCS#8 PEM Ed25519 private key, as given in configuration.
 * @example
 * const key = signingKeyFromPem(process.env.AGORA_JWT_PRIVATE_KEY!);
 */
export function signingKeyFromPem(pem: string): SigningKey {
  const privateKey = createPrivateKey(pem);
  if (privateKey.asymmetricKeyType !== 'ed25519') {
    throw new Error(`the token signing key must be an Ed25519 private key, got ${privateKey.asymmetricKeyType ?? 'a symmetric key'}`);
  }
  const publicKey = createPublicKey(privateKey);
  return { privateKey, publicKey, kid: kidOf(publicKey) };
}

/** Makes a new Ed25519 signing key. */
export function generateSigningKey(): SigningKey {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { privateKey, publicKey, kid: kidOf(publicKey) };
}

/**
 * The development key of embedded mode: read from `file`, or made and written there
 * (mode 0600) on first start, so tokens survive restarts.
 * @example
 * const key = await loadOrCreateSigningKey('.agora/keys/jwt-ed25519.pem');
 */
export async function loadOrCreateSigningKey(file: string): Promise<SigningKey> {
  try {
    return signingKeyFromPem(await readFile(file, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const key = generateSigningKey();
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  const pem = key.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
  // `wx` fails if another process wrote the key in the meantime; then use theirs.
  try {
    await writeFile(file, pem, { mode: 0o600, flag: 'wx' });
    return key;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return signingKeyFromPem(await readFile(file, 'utf8'));
  }
}

/** The public half, for verifiers. */
export function verificationKeyOf(key: SigningKey): VerificationKey {
  return { publicKey: key.publicKey, kid: key.kid };
}
