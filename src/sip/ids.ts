import { randomFillSync } from 'node:crypto';

/**
 * Identifiers for branches, tags and Call-IDs. Random bytes are drawn from a
 * pool refilled in blocks, so a new id costs one hex conversion, not one
 * system call.
 */

/** RFC 3261 §8.1.1.7: branches of RFC 3261 elements start with this. */
export const BRANCH_MAGIC_COOKIE = 'z9hG4bK';

const POOL_SIZE = 4096;
const pool = Buffer.allocUnsafe(POOL_SIZE);
let poolOffset = POOL_SIZE;

/** `bytes` random bytes as lower-case hex (2 * bytes characters). */
export function randomHex(bytes: number): string {
  if (bytes > POOL_SIZE) throw new RangeError('randomHex: too many bytes');
  if (poolOffset + bytes > POOL_SIZE) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const out = pool.toString('hex', poolOffset, poolOffset + bytes);
  poolOffset += bytes;
  return out;
}

/** A new Via branch: the magic cookie and 64 random bits. */
export function newBranch(): string {
  return BRANCH_MAGIC_COOKIE + randomHex(8);
}

/** A From/To tag with 64 random bits (RFC 3261 §19.3 asks for at least 32). */
export function newTag(): string {
  return randomHex(8);
}

/** A Call-ID with 128 random bits, `@host` appended when given. */
export function newCallId(host?: string): string {
  const id = randomHex(16);
  return host === undefined || host.length === 0 ? id : `${id}@${host}`;
}

/** An RFC 7616 client nonce: 128 random bits, hex. */
export function newCnonce(): string {
  return randomHex(16);
}
