import { BusError } from './errors.js';

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/**
 * FNV-1a, 32 bits, over the UTF-8 bytes of `text`. Encodes as it goes instead of calling
 * `Buffer.from`, so hashing a short key allocates nothing.
 */
function fnv1a(text: string): number {
  let hash = FNV_OFFSET;
  for (let i = 0; i < text.length; i++) {
    let code = text.charCodeAt(i);
    if (code < 0x80) {
      hash = Math.imul(hash ^ code, FNV_PRIME);
      continue;
    }
    // A valid surrogate pair is one code point of four bytes; a lone surrogate encodes as
    // U+FFFD, as TextEncoder and Buffer do, so every transport (and every language) agrees.
    if (code >= 0xd800 && code <= 0xdbff && i + 1 < text.length) {
      const low = text.charCodeAt(i + 1);
      if (low >= 0xdc00 && low <= 0xdfff) {
        code = 0x10000 + ((code - 0xd800) << 10) + (low - 0xdc00);
        i++;
      } else code = 0xfffd;
    } else if (code >= 0xd800 && code <= 0xdfff) code = 0xfffd;
    if (code < 0x800) {
      hash = Math.imul(hash ^ (0xc0 | (code >> 6)), FNV_PRIME);
    } else if (code < 0x10000) {
      hash = Math.imul(hash ^ (0xe0 | (code >> 12)), FNV_PRIME);
      hash = Math.imul(hash ^ (0x80 | ((code >> 6) & 0x3f)), FNV_PRIME);
    } else {
      hash = Math.imul(hash ^ (0xf0 | (code >> 18)), FNV_PRIME);
      hash = Math.imul(hash ^ (0x80 | ((code >> 12) & 0x3f)), FNV_PRIME);
      hash = Math.imul(hash ^ (0x80 | ((code >> 6) & 0x3f)), FNV_PRIME);
    }
    hash = Math.imul(hash ^ (0x80 | (code & 0x3f)), FNV_PRIME);
  }
  return hash >>> 0;
}

/**
 * The partition of a message: FNV-1a (32-bit, over UTF-8) of its key, modulo `partitions`.
 * Every transport uses this one function, so a key lands in the same partition whichever
 * adapter carries it, and a topic moved between adapters keeps its per-key order.
 *
 * An unkeyed message has no ordering need; it is spread by the hash of `messageId` (stable:
 * a replayed message lands where it first did). With neither key nor id, or with one
 * partition, the answer is 0.
 *
 * @throws BusError `invalid_option` when `partitions` is not a positive integer.
 * @example
 * partitionOf('user-42', 8);            // same number every time, in [0, 8)
 * partitionOf(undefined, 8, message.id); // unkeyed: spread by id
 */
export function partitionOf(key: string | undefined, partitions: number, messageId?: string): number {
  if (partitions === 1) return 0;
  if (!Number.isInteger(partitions) || partitions < 1) {
    throw new BusError('invalid_option', `partitions must be a positive integer, got ${partitions}`, { partitions });
  }
  const basis = key ?? messageId;
  return basis === undefined ? 0 : fnv1a(basis) % partitions;
}
