import { createHash, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { SignJWT, jwtVerify, exportJWK, errors as joseErrors, type JWK, type JWTPayload } from 'jose';
import type { SimClock } from './clock.js';
import { newGuid, opaqueToken } from './ids.js';
import { GRAPH_APP_ID, GRAPH_RESOURCE } from './model.js';

/** The app id Graph's change-notification publisher signs validation tokens as. */
export const GRAPH_NOTIFICATION_PUBLISHER = '0bf30f3b-4a52-48df-9a82-234910c4a086';

/** Who a verified Graph access token speaks for. */
export interface Caller {
  kind: 'app' | 'user';
  tenantId: string;
  appId: string;
  /** application permissions (app tokens) */
  roles: ReadonlySet<string>;
  /** delegated permissions (user tokens) */
  scopes: ReadonlySet<string>;
  /** the signed-in user's object id (user tokens) */
  userId?: string;
  /** token expiry, ms epoch */
  expiresAt: number;
}

export type VerifyResult = { ok: true; caller: Caller } | { ok: false; reason: 'missing' | 'expired' | 'invalid'; message: string };

interface RefreshGrant {
  clientId: string;
  userId: string;
  username: string;
  expiresAt: number;
  /** the sign-in behind it satisfied MFA (interactive device code sign-in; not a password grant) */
  mfa: boolean;
  /** issue order, compared with the user's revocation mark */
  seq: number;
}

/** Why a refresh token is refused. */
export type RefreshRefusal = 'unknown' | 'expired' | 'revoked';

/** Refresh tokens live 90 days (learn.microsoft.com/entra/identity-platform/refresh-tokens). */
const REFRESH_LIFETIME_MS = 90 * 24 * 3600 * 1000;

/** Access tokens are v1-shaped (as Graph receives them) but signed by the simulator's own RS256 key. */
export class TokenService {
  private readonly privateKey: KeyObject;
  private readonly publicKey: KeyObject;
  readonly kid: string;
  private readonly verified = new Map<string, Caller>();
  private readonly refreshTokens = new Map<string, RefreshGrant>();
  /** user id → the last grant seq an administrator revoked (revokeSignInSessions) */
  private readonly revokedThrough = new Map<string, number>();
  private seq = 0;

  constructor(
    private readonly clock: SimClock,
    readonly tenantId: string,
    /** the https origin, e.g. https://127.0.0.1:8443 */
    private readonly origin: () => string,
    public lifetimeSec: number,
  ) {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    this.privateKey = privateKey;
    this.publicKey = publicKey;
    this.kid = createHash('sha1').update(publicKey.export({ type: 'spki', format: 'der' })).digest('base64url');
  }

  /** Issuer of access tokens (v1 style, per tenant). */
  get accessTokenIssuer(): string {
    return `${this.origin()}/${this.tenantId}/`;
  }

  /** Issuer of id tokens and of the OpenID configuration (v2). */
  get issuer(): string {
    return `${this.origin()}/${this.tenantId}/v2.0`;
  }

  async jwks(): Promise<{ keys: JWK[] }> {
    const jwk = await exportJWK(this.publicKey);
    return { keys: [{ ...jwk, kid: this.kid, use: 'sig', alg: 'RS256', x5t: this.kid } as JWK] };
  }

  private async sign(payload: JWTPayload): Promise<string> {
    return new SignJWT(payload).setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid: this.kid, x5t: this.kid }).sign(this.privateKey);
  }

  private times(): { iat: number; nbf: number; exp: number } {
    const iat = Math.floor(this.clock.now() / 1000);
    return { iat, nbf: iat, exp: iat + this.lifetimeSec };
  }

  /** client_credentials: roles = the app's consented application permissions. authMethod 1 = secret, 2 = certificate. */
  async issueAppToken(app: { clientId: string; displayName?: string; roles: readonly string[]; servicePrincipalId: string }, authMethod: '1' | '2'): Promise<{ token: string; expiresIn: number }> {
    const t = this.times();
    const token = await this.sign({
      aud: GRAPH_RESOURCE,
      iss: this.accessTokenIssuer,
      ...t,
      aio: opaqueToken(12),
      app_displayname: app.displayName ?? app.clientId,
      appid: app.clientId,
      appidacr: authMethod,
      azp: app.clientId,
      azpacr: authMethod,
      idp: this.accessTokenIssuer,
      idtyp: 'app',
      oid: app.servicePrincipalId,
      roles: [...app.roles],
      sub: app.servicePrincipalId,
      tid: this.tenantId,
      uti: opaqueToken(16),
      ver: '1.0',
    });
    return { token, expiresIn: this.lifetimeSec };
  }

  /** Delegated token (password or refresh grant) plus id token and a refresh token. */
  async issueUserTokens(
    app: { clientId: string; displayName?: string },
    user: { id: string; upn: string; name: string },
    scopes: readonly string[],
    options: { mfa?: boolean } = {},
  ): Promise<{ accessToken: string; idToken: string; refreshToken: string; expiresIn: number; clientInfo: string }> {
    const t = this.times();
    const mfa = options.mfa ?? false;
    const accessToken = await this.sign({
      aud: GRAPH_RESOURCE,
      iss: this.accessTokenIssuer,
      ...t,
      acr: '1',
      amr: mfa ? ['pwd', 'mfa'] : ['pwd'],
      app_displayname: app.displayName ?? app.clientId,
      appid: app.clientId,
      appidacr: '0',
      azp: app.clientId,
      idtyp: 'user',
      name: user.name,
      oid: user.id,
      scp: scopes.join(' '),
      sub: createHash('sha256').update(`${user.id}:${app.clientId}`).digest('base64url'),
      tid: this.tenantId,
      unique_name: user.upn,
      upn: user.upn,
      uti: opaqueToken(16),
      ver: '1.0',
    });
    const idToken = await this.sign({
      aud: app.clientId,
      iss: this.issuer,
      ...t,
      name: user.name,
      oid: user.id,
      preferred_username: user.upn,
      sub: createHash('sha256').update(`${user.id}:${app.clientId}:id`).digest('base64url'),
      tid: this.tenantId,
      uti: opaqueToken(16),
      ver: '2.0',
    });
    const refreshToken = opaqueToken(48);
    if (this.refreshTokens.size >= 10_000) this.pruneRefreshTokens();
    this.refreshTokens.set(refreshToken, {
      clientId: app.clientId,
      userId: user.id,
      username: user.upn,
      expiresAt: this.clock.now() + REFRESH_LIFETIME_MS,
      mfa,
      seq: ++this.seq,
    });
    const clientInfo = Buffer.from(JSON.stringify({ uid: user.id, utid: this.tenantId }), 'utf8').toString('base64url');
    return { accessToken, idToken, refreshToken, expiresIn: this.lifetimeSec, clientInfo };
  }

  /**
   * Redeem a refresh token. Entra answers with a new refresh token every time
   * but does not revoke the old one on use ("Refresh tokens replace themselves
   * with a fresh token upon every use. The Microsoft identity platform doesn't
   * revoke old refresh tokens", learn.microsoft.com/entra/identity-platform/refresh-tokens):
   * the old one stays valid until it expires or the user's sessions are revoked.
   */
  redeemRefreshToken(token: string, clientId: string): { ok: true; grant: RefreshGrant } | { ok: false; why: RefreshRefusal } {
    const grant = this.refreshTokens.get(token);
    if (!grant || grant.clientId !== clientId) return { ok: false, why: 'unknown' };
    if (grant.seq <= (this.revokedThrough.get(grant.userId) ?? 0)) return { ok: false, why: 'revoked' };
    if (grant.expiresAt <= this.clock.now()) return { ok: false, why: 'expired' };
    return { ok: true, grant };
  }

  /** An administrator revokes the user's sessions (Graph revokeSignInSessions): every refresh token issued so far stops working. */
  revokeUserSessions(userId: string): number {
    this.revokedThrough.set(userId, this.seq);
    let n = 0;
    for (const g of this.refreshTokens.values()) if (g.userId === userId) n++;
    return n;
  }

  private pruneRefreshTokens(): void {
    const now = this.clock.now();
    for (const [token, g] of this.refreshTokens) {
      if (g.expiresAt <= now || g.seq <= (this.revokedThrough.get(g.userId) ?? 0)) this.refreshTokens.delete(token);
    }
  }

  /**
   * A JWT the simulator signs for rich notifications (validationTokens), shaped
   * as Graph's: aud = the subscribing app, iss = the tenant's v1 issuer, appid =
   * the Graph change-notification publisher, signed with the tenant's keys.
   * Graph: change-notifications-with-resource-data (Example JWT token)
   */
  async issueValidationToken(appId: string): Promise<string> {
    const t = this.times();
    return this.sign({
      aud: appId,
      iss: this.accessTokenIssuer,
      ...t,
      exp: t.iat + 8 * 3600,
      aio: opaqueToken(12),
      appid: GRAPH_NOTIFICATION_PUBLISHER,
      appidacr: '2',
      idp: this.accessTokenIssuer,
      tid: this.tenantId,
      ver: '1.0',
      uti: newGuid(),
    });
  }

  /** Verify a bearer token from an Authorization header value. */
  async verifyBearer(header: string | undefined): Promise<VerifyResult> {
    if (!header || header.trim() === '') return { ok: false, reason: 'missing', message: 'Access token is empty.' };
    const m = /^Bearer\s+(\S+)$/i.exec(header.trim());
    if (!m || m[1] === undefined) return { ok: false, reason: 'invalid', message: 'Access token validation failure. Invalid audience.' };
    const token = m[1];
    const now = this.clock.now();
    const cached = this.verified.get(token);
    if (cached) {
      if (cached.expiresAt <= now) return { ok: false, reason: 'expired', message: 'Lifetime validation failed, the token is expired.' };
      return { ok: true, caller: cached };
    }
    let payload: JWTPayload;
    try {
      const result = await jwtVerify(token, this.publicKey, {
        algorithms: ['RS256'],
        issuer: this.accessTokenIssuer,
        audience: [GRAPH_RESOURCE, GRAPH_APP_ID],
        currentDate: new Date(now),
      });
      payload = result.payload;
    } catch (error) {
      if (error instanceof joseErrors.JWTExpired) {
        return { ok: false, reason: 'expired', message: 'Lifetime validation failed, the token is expired.' };
      }
      if (error instanceof joseErrors.JWTClaimValidationFailed && error.claim === 'aud') {
        return { ok: false, reason: 'invalid', message: 'Access token validation failure. Invalid audience.' };
      }
      return { ok: false, reason: 'invalid', message: 'IDX14100: JWT is not well formed or its signature is invalid.' };
    }
    const caller = callerFromPayload(payload);
    if (!caller) return { ok: false, reason: 'invalid', message: 'Access token validation failure.' };
    if (caller.tenantId !== this.tenantId) return { ok: false, reason: 'invalid', message: 'Access token validation failure. Invalid tenant.' };
    if (this.verified.size >= 10_000) this.verified.clear();
    this.verified.set(token, caller);
    return { ok: true, caller };
  }
}

function callerFromPayload(p: JWTPayload): Caller | undefined {
  const tid = p['tid'];
  const appid = p['appid'];
  const exp = p.exp;
  if (typeof tid !== 'string' || typeof appid !== 'string' || typeof exp !== 'number') return undefined;
  const idtyp = p['idtyp'];
  const rolesRaw = p['roles'];
  const scp = p['scp'];
  const roles = new Set(Array.isArray(rolesRaw) ? rolesRaw.filter((r): r is string => typeof r === 'string') : []);
  const scopes = new Set(typeof scp === 'string' ? scp.split(' ').filter(Boolean) : []);
  if (idtyp === 'user') {
    const oid = p['oid'];
    if (typeof oid !== 'string') return undefined;
    return { kind: 'user', tenantId: tid, appId: appid, roles, scopes, userId: oid, expiresAt: exp * 1000 };
  }
  return { kind: 'app', tenantId: tid, appId: appid, roles, scopes, expiresAt: exp * 1000 };
}
