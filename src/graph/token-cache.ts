/**
 * The msal token cache of the device-code service accounts, kept in the
 * gateway's store so a restart needs no new interactive sign-in. It holds
 * refresh tokens, so it is sealed with AES-256-GCM (a fresh 96-bit IV per
 * write, the 128-bit tag checked on read) under a key from config or the
 * environment; the store sees ciphertext only and the key is never logged.
 *
 * msal calls the plugin around every cache access (msal-node ICachePlugin:
 * beforeCacheAccess deserializes, afterCacheAccess serializes when
 * cacheHasChanged; learn.microsoft.com/javascript/api/@azure/msal-node/icacheplugin).
 */
import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import type { ICachePlugin, TokenCacheContext } from '@azure/msal-node';
import type { Logger } from '../util/logger.js';
import { systemClock, type Clock } from '../util/clock.js';

/** What the store keeps (src/store GraphTokenCacheRecord fits). */
export interface SealedTokenCache {
  name: string;
  keyId: string;
  iv: string;
  tag: string;
  data: string;
  updatedAt: number;
}

/** Where the sealed cache lives (src/store graphTokenCacheState fits). */
export interface TokenCacheStore {
  load(): SealedTokenCache | undefined;
  save(record: SealedTokenCache): void;
  readonly persistent: boolean;
}

/** A store in memory only (tests; a gateway without a store). */
export class MemoryTokenCacheStore implements TokenCacheStore {
  readonly persistent = false;
  record: SealedTokenCache | undefined;
  load(): SealedTokenCache | undefined {
    return this.record === undefined ? undefined : { ...this.record };
  }
  save(record: SealedTokenCache): void {
    this.record = { ...record };
  }
}

const AAD_PREFIX = 'presence-gateway msal token cache v1:';

/** A name for the key that does not give the key away (HMAC of a fixed label). */
export function keyIdOf(key: Buffer): string {
  return createHmac('sha256', key).update('presence-gateway token cache key id').digest('hex').slice(0, 16);
}

export function sealTokenCache(name: string, plaintext: string, key: Buffer, now: number): SealedTokenCache {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  // the record's name is authenticated too: a sealed cache cannot be moved to another name
  cipher.setAAD(Buffer.from(AAD_PREFIX + name, 'utf8'));
  const data = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return { name, keyId: keyIdOf(key), iv: iv.toString('base64'), tag: cipher.getAuthTag().toString('base64'), data: data.toString('base64'), updatedAt: now };
}

export type OpenResult = { ok: true; plaintext: string } | { ok: false; why: 'other-key' | 'damaged' };

export function openTokenCache(record: SealedTokenCache, key: Buffer): OpenResult {
  if (record.keyId !== keyIdOf(key)) return { ok: false, why: 'other-key' };
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(record.iv, 'base64'));
    decipher.setAAD(Buffer.from(AAD_PREFIX + record.name, 'utf8'));
    decipher.setAuthTag(Buffer.from(record.tag, 'base64'));
    const plain = Buffer.concat([decipher.update(Buffer.from(record.data, 'base64')), decipher.final()]);
    return { ok: true, plaintext: plain.toString('utf8') };
  } catch {
    return { ok: false, why: 'damaged' };
  }
}

export interface TokenCachePluginOptions {
  name: string;
  key: Buffer;
  store: TokenCacheStore;
  logger: Logger;
  clock?: Pick<Clock, 'now'>;
}

/**
 * The msal cache plugin. msal-node clears its memory before each access and
 * takes what beforeCacheAccess deserializes (TokenCache "Overwriting in-memory
 * cache with persistent cache"), so the cache is handed over every time; it
 * is decrypted again only when the store holds a record not seen before.
 */
export function tokenCachePlugin(o: TokenCachePluginOptions): ICachePlugin {
  const clock = o.clock ?? systemClock;
  let seenIv: string | undefined;
  let seenPlain = '';
  let warned = false;
  return {
    async beforeCacheAccess(ctx: TokenCacheContext): Promise<void> {
      let record: SealedTokenCache | undefined;
      try {
        record = o.store.load();
      } catch (error) {
        o.logger.warn({ err: error }, 'graph: cannot read the stored token cache; using the one in memory');
        return;
      }
      if (record === undefined) return;
      if (record.iv === seenIv) {
        ctx.tokenCache.deserialize(seenPlain);
        return;
      }
      const opened = openTokenCache(record, o.key);
      if (!opened.ok) {
        if (!warned) {
          warned = true;
          o.logger.warn(
            { why: opened.why },
            opened.why === 'other-key'
              ? 'graph: the stored token cache was sealed with another key (graph.tokenCacheKey changed?); device-code accounts need a new sign-in'
              : 'graph: the stored token cache does not open (damaged); device-code accounts need a new sign-in',
          );
        }
        return;
      }
      seenIv = record.iv;
      seenPlain = opened.plaintext;
      ctx.tokenCache.deserialize(opened.plaintext);
    },
    async afterCacheAccess(ctx: TokenCacheContext): Promise<void> {
      if (!ctx.cacheHasChanged) return;
      const plain = ctx.tokenCache.serialize();
      const sealed = sealTokenCache(o.name, plain, o.key, clock.now());
      try {
        o.store.save(sealed);
        seenIv = sealed.iv;
        seenPlain = plain;
      } catch (error) {
        o.logger.warn({ err: error }, 'graph: cannot save the token cache; a restart will need a new sign-in');
      }
    },
  };
}
