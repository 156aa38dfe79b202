import { hash, verify } from '@node-rs/argon2';
import type { PasswordHasher } from '../app/ports.js';

/**
 * argon2id with its defaults (19 MiB, 2 passes, 1 lane): OWASP's recommended minimum.
 * Hashing runs on libuv's thread pool, off the event loop.
 */
export function argon2Hasher(): PasswordHasher {
  return {
    hash: (password) => hash(password),
    verify: async (stored, password) => {
      try {
        return await verify(stored, password);
      } catch {
        return false; // a malformed stored hash never matches
      }
    },
  };
}
