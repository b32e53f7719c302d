/**
 * Bearer tokens (RFC 6750 §2.1) compared in constant time: both sides are
 * hashed first so neither the content nor the length leaks through timing.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

export class TokenCheck {
  private readonly digest: Buffer;

  constructor(token: string) {
    this.digest = createHash('sha256').update(token, 'utf8').digest();
  }

  matches(candidate: string | undefined): boolean {
    if (candidate === undefined || candidate.length === 0 || candidate.length > 1024) return false;
    return timingSafeEqual(createHash('sha256').update(candidate, 'utf8').digest(), this.digest);
  }

  /** The token of an `Authorization: Bearer <token>` header, else undefined. */
  static fromHeader(header: string | string[] | undefined): string | undefined {
    if (typeof header !== 'string') return undefined;
    const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
    return m?.[1];
  }
}
