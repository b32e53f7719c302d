/**
 * Rich change notifications (includeResourceData): the presence itself
 * comes encrypted in each item, so no read-back is needed. Following
 * Graph: change-notifications-with-resource-data:
 * - decrypting: RSA-OAEP (SHA-1, MGF1) unwraps the item's symmetric key
 *   (dataKey) with the private key its encryptionCertificateId names; the
 *   HMAC-SHA256 of the encrypted data under that key must equal
 *   dataSignature, else the item is tampered with and not decrypted;
 *   AES-256-CBC with PKCS7 padding and the first 16 bytes of the key as IV
 *   gives the resource as JSON.
 * - validating: every JWT in validationTokens must be signed by a key of the
 *   tenant's OpenID configuration, issued by its issuer, for our app id
 *   (aud), by the Graph change-notification publisher
 *   (appid 0bf30f3b-4a52-48df-9a82-234910c4a086), and not expired.
 */
import { constants, createDecipheriv, createHmac, privateDecrypt, timingSafeEqual } from 'node:crypto';
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from 'jose';
import type { Logger } from '../util/logger.js';
import type { Clock } from '../util/clock.js';
import { isRecord } from './json.js';
import type { NotificationKeyring } from './notification-keys.js';
import type { EncryptedContent } from './webhook-handler.js';

/** The app id Graph's change-notification publisher signs validation tokens as. */
export const GRAPH_NOTIFICATION_PUBLISHER = '0bf30f3b-4a52-48df-9a82-234910c4a086';

export type DropReason = 'clientState' | 'tenant' | 'validationToken' | 'signature' | 'decryption';

export type Decrypted = { ok: true; resource: unknown } | { ok: false; reason: 'signature' | 'decryption'; detail: string };

/** Decrypt one item's encryptedContent with the keyring. Never throws. */
export function decryptContent(content: EncryptedContent, keys: NotificationKeyring): Decrypted {
  const key = keys.key(content.encryptionCertificateId);
  if (key === undefined) return { ok: false, reason: 'decryption', detail: `no key for certificate id ${content.encryptionCertificateId}` };
  if (content.encryptionCertificateThumbprint !== undefined && content.encryptionCertificateThumbprint.toUpperCase() !== key.thumbprint) {
    return { ok: false, reason: 'decryption', detail: 'the certificate thumbprint does not match the certificate id' };
  }
  let symmetric: Buffer;
  try {
    symmetric = privateDecrypt({ key: key.privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, Buffer.from(content.dataKey, 'base64'));
  } catch {
    return { ok: false, reason: 'decryption', detail: 'the dataKey does not decrypt with our private key' };
  }
  if (symmetric.length !== 32) return { ok: false, reason: 'decryption', detail: `the symmetric key has ${symmetric.length} bytes, not 32` };
  const data = Buffer.from(content.data, 'base64');
  const expected = createHmac('sha256', symmetric).update(data).digest();
  const given = Buffer.from(content.dataSignature, 'base64');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    return { ok: false, reason: 'signature', detail: 'dataSignature does not match the data (tampered with?)' };
  }
  try {
    const decipher = createDecipheriv('aes-256-cbc', symmetric, symmetric.subarray(0, 16));
    const text = Buffer.concat([decipher.update(data), decipher.final()]).toString('utf8');
    return { ok: true, resource: JSON.parse(text) as unknown };
  } catch {
    return { ok: false, reason: 'decryption', detail: 'the data does not decrypt to JSON' };
  }
}

export interface ValidationTokenVerifierOptions {
  /** e.g. https://login.microsoftonline.com (graph.authorityHost) */
  authorityHost: string;
  tenantId: string;
  /** our app registration's client id: the tokens' audience */
  clientId: string;
  /** GET a JSON document (the Graph side's https transport, so its CA applies) */
  getJson(url: string): Promise<unknown>;
  clock: Clock;
  logger: Logger;
  /** how long fetched keys are kept (default 1 h); an unknown kid refetches at most once a minute */
  keysTtlMs?: number;
}

interface Issuer {
  issuer: string;
  jwks: ReturnType<typeof createLocalJWKSet>;
  kids: Set<string>;
  at: number;
}

/**
 * Checks validationTokens. The tenant's OpenID configuration (v1 endpoint,
 * `{authority}/{tenant}/.well-known/openid-configuration`) names both the
 * issuer the tokens carry (https://sts.windows.net/{tenant}/ in the public
 * cloud) and the signing keys (jwks_uri, the keys Entra rotates): taking both
 * from there keeps national clouds working without a setting.
 */
export class ValidationTokenVerifier {
  private cached: Issuer | undefined;
  private loading: Promise<Issuer> | undefined;
  private lastRefetch = 0;
  /** tokens already verified, until their expiry (Graph repeats them on every delivery) */
  private readonly good = new Map<string, number>();

  constructor(private readonly o: ValidationTokenVerifierOptions) {}

  private async fetchIssuer(): Promise<Issuer> {
    const base = this.o.authorityHost.replace(/\/+$/, '');
    const config = await this.o.getJson(`${base}/${encodeURIComponent(this.o.tenantId)}/.well-known/openid-configuration`);
    if (!isRecord(config) || typeof config['issuer'] !== 'string' || typeof config['jwks_uri'] !== 'string') {
      throw new Error('the OpenID configuration names no issuer or jwks_uri');
    }
    const keys = await this.o.getJson(config['jwks_uri']);
    if (!isRecord(keys) || !Array.isArray(keys['keys'])) throw new Error('the jwks_uri document has no keys');
    const set = keys as unknown as JSONWebKeySet;
    const kids = new Set(set.keys.map((k) => k.kid).filter((k): k is string => typeof k === 'string'));
    // the v1 configuration may name the tenant as {tenantid}
    const issuer = config['issuer'].replace('{tenantid}', this.o.tenantId);
    return { issuer, jwks: createLocalJWKSet(set), kids, at: this.o.clock.now() };
  }

  private async issuerFor(kid: string | undefined): Promise<Issuer> {
    const now = this.o.clock.now();
    const c = this.cached;
    const fresh = c !== undefined && now - c.at < (this.o.keysTtlMs ?? 3600_000);
    const unknownKid = c !== undefined && kid !== undefined && !c.kids.has(kid) && now - this.lastRefetch > 60_000;
    if (c !== undefined && fresh && !unknownKid) return c;
    if (unknownKid) this.lastRefetch = now;
    this.loading ??= this.fetchIssuer().finally(() => {
      this.loading = undefined;
    });
    try {
      this.cached = await this.loading;
    } catch (error) {
      // keys rotate slowly: a failed refresh keeps the ones we have
      if (c === undefined) throw error;
      this.o.logger.warn({ err: error }, 'graph: cannot refresh the token signing keys; keeping the previous ones');
      return c;
    }
    return this.cached;
  }

  /** True when every token is valid (and there is at least one). Never throws. */
  async verify(tokens: readonly string[] | undefined): Promise<{ ok: true } | { ok: false; detail: string }> {
    if (tokens === undefined || tokens.length === 0) return { ok: false, detail: 'no validationTokens' };
    const now = this.o.clock.now();
    for (const token of tokens) {
      const until = this.good.get(token);
      if (until !== undefined && until > now) continue;
      const r = await this.verifyOne(token);
      if (!r.ok) return r;
      if (this.good.size > 1000) this.good.clear();
      this.good.set(token, r.exp);
    }
    return { ok: true };
  }

  private async verifyOne(token: string): Promise<{ ok: true; exp: number } | { ok: false; detail: string }> {
    try {
      const header = JSON.parse(Buffer.from(token.split('.')[0] ?? '', 'base64url').toString('utf8')) as unknown;
      const kid = isRecord(header) && typeof header['kid'] === 'string' ? header['kid'] : undefined;
      const issuer = await this.issuerFor(kid);
      const { payload } = await jwtVerify(token, issuer.jwks, {
        algorithms: ['RS256'],
        issuer: issuer.issuer,
        audience: [...new Set([this.o.clientId, this.o.clientId.toLowerCase()])],
        currentDate: new Date(this.o.clock.now()),
        requiredClaims: ['exp', 'aud', 'iss'],
        clockTolerance: 300,
      });
      // Critical per the docs: the token must come from the Graph change-notification publisher
      if (payload['appid'] !== GRAPH_NOTIFICATION_PUBLISHER && payload['azp'] !== GRAPH_NOTIFICATION_PUBLISHER) {
        return { ok: false, detail: `the token was issued to ${String(payload['appid'] ?? payload['azp'])}, not to the Graph notification publisher` };
      }
      return { ok: true, exp: (payload.exp ?? 0) * 1000 };
    } catch (error) {
      return { ok: false, detail: error instanceof Error ? error.message : String(error) };
    }
  }
}
