import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { decodeProtectedHeader, jwtVerify, errors as joseErrors } from 'jose';
import { Aad, newCorrelationId, type AadError, type AadErrorContext } from './aadsts.js';
import type { SimContext } from './context.js';
import { isRecord } from './ids.js';
import { GRAPH_APP_ID, GRAPH_RESOURCE } from './model.js';
import type { RegisteredApp } from './registry.js';

const OIDC_SCOPES = new Set(['openid', 'profile', 'offline_access', 'email']);
const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const DEVICE_CODE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
/** Where the user enters the code (Entra: https://microsoft.com/devicelogin); here a page naming the control API. */
export const DEVICE_LOGIN_PATH = '/devicelogin';

type Form = Record<string, string>;

function form(request: FastifyRequest): Form {
  const b = request.body;
  const out: Form = {};
  if (isRecord(b)) for (const [k, v] of Object.entries(b)) if (typeof v === 'string') out[k] = v;
  return out;
}

class AadFailure extends Error {
  constructor(readonly aad: AadError) {
    super(aad.body.error_description);
  }
}

/** The tenant an authority path segment names: its id, its domain, or (for user flows) organizations/common. */
function resolveTenant(ctx: SimContext, segment: string): 'tenant' | 'multi' | undefined {
  const s = segment.toLowerCase();
  if (s === ctx.tenantId || s === ctx.tenantDomain.toLowerCase()) return 'tenant';
  if (s === 'organizations' || s === 'common') return 'multi';
  return undefined;
}

export function openIdConfiguration(ctx: SimContext, tenantSegment: string): Record<string, unknown> {
  const origin = ctx.origin();
  const multi = resolveTenant(ctx, tenantSegment) === 'multi';
  const t = multi ? tenantSegment.toLowerCase() : ctx.tenantId;
  const host = new URL(origin).host;
  return {
    token_endpoint: `${origin}/${t}/oauth2/v2.0/token`,
    token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
    jwks_uri: `${origin}/${t}/discovery/v2.0/keys`,
    response_modes_supported: ['query', 'fragment', 'form_post'],
    subject_types_supported: ['pairwise'],
    id_token_signing_alg_values_supported: ['RS256'],
    response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
    scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
    issuer: multi ? `${origin}/{tenantid}/v2.0` : `${origin}/${ctx.tenantId}/v2.0`,
    request_uri_parameter_supported: false,
    userinfo_endpoint: `${origin}/oidc/userinfo`,
    authorization_endpoint: `${origin}/${t}/oauth2/v2.0/authorize`,
    device_authorization_endpoint: `${origin}/${t}/oauth2/v2.0/devicecode`,
    http_logout_supported: true,
    frontchannel_logout_supported: true,
    end_session_endpoint: `${origin}/${t}/oauth2/v2.0/logout`,
    claims_supported: ['sub', 'iss', 'aud', 'exp', 'iat', 'auth_time', 'acr', 'nonce', 'preferred_username', 'name', 'tid', 'ver', 'at_hash', 'c_hash', 'email'],
    tenant_region_scope: 'EU',
    cloud_instance_name: host,
    cloud_graph_host_name: host,
    msgraph_host: host,
    rbac_url: origin,
  };
}

export function registerEntraRoutes(app: FastifyInstance, ctx: SimContext): void {
  const errorContext = (request: FastifyRequest): AadErrorContext => ({
    now: ctx.clock.now(),
    correlationId: newCorrelationId(request.headers['client-request-id']),
    origin: ctx.origin(),
  });
  const sendAad = (reply: FastifyReply, e: AadError) => reply.code(e.status).header('cache-control', 'no-store').send(e.body);

  const config = async (request: FastifyRequest, reply: FastifyReply) => {
    const { tenant } = request.params as { tenant: string };
    if (!resolveTenant(ctx, tenant)) return sendAad(reply, Aad.tenantNotFound(errorContext(request), tenant));
    const doc = openIdConfiguration(ctx, tenant);
    // the v1 document (no /v2.0) names the v1 issuer, the one of v1 tokens and notification validation tokens
    if (!request.url.includes('/v2.0/') && resolveTenant(ctx, tenant) === 'tenant') doc['issuer'] = ctx.tokens.accessTokenIssuer;
    return reply.send(doc);
  };
  app.get('/:tenant/v2.0/.well-known/openid-configuration', config);
  app.get('/:tenant/.well-known/openid-configuration', config);

  app.get('/:tenant/discovery/v2.0/keys', async (request, reply) => {
    const { tenant } = request.params as { tenant: string };
    if (!resolveTenant(ctx, tenant)) return sendAad(reply, Aad.tenantNotFound(errorContext(request), tenant));
    return reply.send(await ctx.tokens.jwks());
  });

  // instance discovery, so a client can fetch cloudDiscoveryMetadata from here instead of from Microsoft
  app.get('/common/discovery/instance', async (_request, reply) => {
    const host = new URL(ctx.origin()).host;
    return reply.send({
      tenant_discovery_endpoint: `${ctx.origin()}/${ctx.tenantId}/v2.0/.well-known/openid-configuration`,
      'api-version': '1.1',
      metadata: [{ preferred_network: host, preferred_cache: host, aliases: [host] }],
    });
  });

  // The device authorization request: client id and scopes only, no client credential (v2-oauth2-device-code).
  app.post('/:tenant/oauth2/v2.0/devicecode', async (request, reply) => {
    const { tenant } = request.params as { tenant: string };
    const ec = errorContext(request);
    const f = form(request);
    try {
      if (!resolveTenant(ctx, tenant)) throw new AadFailure(Aad.tenantNotFound(ec, tenant));
      const clientId = f['client_id'];
      if (!clientId) throw new AadFailure(Aad.missingParameter(ec, 'client_id'));
      if (!ctx.registry.app(clientId)) throw new AadFailure(Aad.unknownClient(ec, clientId, ctx.tenantId));
      const scope = f['scope'];
      if (!scope) throw new AadFailure(Aad.missingParameter(ec, 'scope'));
      const g = ctx.deviceCodes.issue(clientId.toLowerCase(), scope.split(/\s+/).filter(Boolean));
      const uri = `${ctx.origin()}${DEVICE_LOGIN_PATH}`;
      ctx.logger.info({ tenant, clientId, userCode: g.userCode }, 'graph-sim: device code issued');
      return reply.header('cache-control', 'no-store').send({
        user_code: g.userCode,
        device_code: g.deviceCode,
        verification_uri: uri,
        expires_in: Math.round((g.expiresAt - g.issuedAt) / 1000),
        interval: g.intervalSec,
        message: `To sign in, use a web browser to open the page ${uri} and enter the code ${g.userCode} to authenticate.`,
      });
    } catch (error) {
      if (error instanceof AadFailure) return sendAad(reply, error.aad);
      throw error;
    }
  });
  app.get(DEVICE_LOGIN_PATH, async (_request, reply) =>
    reply
      .type('text/plain; charset=utf-8')
      .send('This simulated tenant has no sign-in page. Act as the user with the control API:\n  graph-sim approve <code> <user principal name>\n  graph-sim deny <code>\n'),
  );

  app.post('/:tenant/oauth2/v2.0/token', async (request, reply) => {
    const { tenant } = request.params as { tenant: string };
    const ec = errorContext(request);
    try {
      const body = await token(ctx, ec, tenant, form(request));
      return reply.header('cache-control', 'no-store').header('pragma', 'no-cache').send(body);
    } catch (error) {
      if (error instanceof AadFailure) {
        ctx.logger.info({ tenant, error: error.aad.body.error, code: error.aad.body.error_codes[0] }, 'graph-sim: token request refused');
        return sendAad(reply, error.aad);
      }
      throw error;
    }
  });
}

async function token(ctx: SimContext, ec: AadErrorContext, tenantSegment: string, f: Form): Promise<Record<string, unknown>> {
  const tenantKind = resolveTenant(ctx, tenantSegment);
  if (!tenantKind) throw new AadFailure(Aad.tenantNotFound(ec, tenantSegment));
  const grant = f['grant_type'];
  if (!grant) throw new AadFailure(Aad.missingParameter(ec, 'grant_type'));
  const clientId = f['client_id'];
  if (!clientId) throw new AadFailure(Aad.missingParameter(ec, 'client_id'));
  const app = ctx.registry.app(clientId);
  if (!app) throw new AadFailure(Aad.unknownClient(ec, clientId, tenantKind === 'tenant' ? tenantSegment : ctx.tenantId));

  switch (grant) {
    case 'client_credentials': {
      if (tenantKind !== 'tenant') throw new AadFailure(Aad.tenantNotFound(ec, tenantSegment));
      const method = await authenticateClient(ctx, ec, app, f, true);
      checkDefaultScope(ec, f['scope'], ctx.tenantId);
      const { token, expiresIn } = await ctx.tokens.issueAppToken(
        { clientId: app.clientId, displayName: app.displayName, roles: app.applicationPermissions, servicePrincipalId: app.servicePrincipalId },
        method,
      );
      return { token_type: 'Bearer', expires_in: expiresIn, ext_expires_in: expiresIn, access_token: token };
    }
    case 'password': {
      await authenticateClient(ctx, ec, app, f, !app.allowPublicClient);
      const username = f['username'];
      const password = f['password'];
      if (!username) throw new AadFailure(Aad.missingParameter(ec, 'username'));
      if (password === undefined) throw new AadFailure(Aad.missingParameter(ec, 'password'));
      const account = ctx.registry.account(username);
      const user = account ? ctx.directory.get(account.userId) : undefined;
      if (!account || !user) throw new AadFailure(Aad.unknownUser(ec, username, ctx.tenantDomain));
      if (ctx.registry.lockedOut(account.username, ctx.clock.now())) throw new AadFailure(Aad.lockedOut(ec));
      if (account.password !== password) {
        ctx.registry.passwordFailed(account.username, ctx.clock.now());
        throw new AadFailure(Aad.wrongPassword(ec));
      }
      ctx.registry.passwordSucceeded(account.username);
      if (!user.accountEnabled) throw new AadFailure(Aad.disabledAccount(ec));
      if (account.mfa) throw new AadFailure(Aad.mfaRequired(ec, GRAPH_APP_ID));
      const requested = (f['scope'] ?? '').split(/\s+/).filter(Boolean);
      const scopes = delegatedScopes(ctx, ec, app, requested);
      return userTokenResponse(ctx, app, user.id, user.userPrincipalName, user.displayName, scopes, requested);
    }
    // msal sends the short form "device_code" (msal-common GrantType.DEVICE_CODE_GRANT) and Entra takes it as it takes the URN
    case 'device_code':
    case DEVICE_CODE_GRANT: {
      // a public client flow: the app registration must allow public client flows, else a credential is needed (AADSTS7000218)
      await authenticateClient(ctx, ec, app, f, !app.allowPublicClient);
      const code = f['device_code'];
      if (!code) throw new AadFailure(Aad.missingParameter(ec, 'device_code'));
      const outcome = ctx.deviceCodes.poll(code, app.clientId);
      switch (outcome.kind) {
        case 'unknown':
          throw new AadFailure(Aad.badVerificationCode(ec));
        case 'pending':
          throw new AadFailure(Aad.authorizationPending(ec));
        case 'slow-down':
          throw new AadFailure(Aad.slowDown(ec, outcome.intervalSec));
        case 'expired':
          throw new AadFailure(Aad.deviceCodeExpired(ec));
        case 'declined':
          throw new AadFailure(Aad.deviceCodeDeclined(ec));
        case 'approved': {
          const user = outcome.grant.userId !== undefined ? ctx.directory.get(outcome.grant.userId) : undefined;
          if (!user) throw new AadFailure(Aad.badVerificationCode(ec));
          if (!user.accountEnabled) throw new AadFailure(Aad.disabledAccount(ec));
          const requested = outcome.grant.requested;
          const scopes = delegatedScopes(ctx, ec, app, requested);
          // the user signed in interactively, MFA included: the grant carries it
          return userTokenResponse(ctx, app, user.id, user.userPrincipalName, user.displayName, scopes, requested, { mfa: true });
        }
      }
      throw new AadFailure(Aad.badVerificationCode(ec));
    }
    case 'refresh_token': {
      await authenticateClient(ctx, ec, app, f, !app.allowPublicClient);
      const rt = f['refresh_token'];
      if (!rt) throw new AadFailure(Aad.missingParameter(ec, 'refresh_token'));
      const redeemed = ctx.tokens.redeemRefreshToken(rt, app.clientId);
      if (!redeemed.ok) {
        if (redeemed.why === 'revoked') throw new AadFailure(Aad.revokedGrant(ec));
        if (redeemed.why === 'expired') throw new AadFailure(Aad.expiredGrant(ec, new Date(ctx.clock.now()).toISOString()));
        throw new AadFailure(Aad.badRefreshToken(ec));
      }
      const grantInfo = redeemed.grant;
      const user = ctx.directory.get(grantInfo.userId);
      if (!user) throw new AadFailure(Aad.badRefreshToken(ec));
      // a grant from a password sign-in does not carry MFA: once MFA is required it no longer refreshes
      const account = ctx.registry.account(grantInfo.username);
      if (account?.mfa && !grantInfo.mfa) throw new AadFailure(Aad.mfaRequired(ec, GRAPH_APP_ID));
      if (!user.accountEnabled) throw new AadFailure(Aad.disabledAccount(ec));
      const requested = (f['scope'] ?? '').split(/\s+/).filter(Boolean);
      const scopes = delegatedScopes(ctx, ec, app, requested);
      return userTokenResponse(ctx, app, user.id, user.userPrincipalName, user.displayName, scopes, [...requested, 'offline_access'], { mfa: grantInfo.mfa });
    }
    default:
      throw new AadFailure(Aad.unsupportedGrant(ec, grant));
  }
}

async function userTokenResponse(
  ctx: SimContext,
  app: RegisteredApp,
  userId: string,
  upn: string,
  name: string,
  scopes: string[],
  requested: string[],
  options: { mfa?: boolean } = {},
): Promise<Record<string, unknown>> {
  const t = await ctx.tokens.issueUserTokens({ clientId: app.clientId, displayName: app.displayName }, { id: userId, upn, name }, scopes, options);
  const oidc = requested.filter((s) => OIDC_SCOPES.has(s.toLowerCase()) && s.toLowerCase() !== 'offline_access');
  const body: Record<string, unknown> = {
    token_type: 'Bearer',
    scope: [...scopes, ...oidc].join(' '),
    expires_in: t.expiresIn,
    ext_expires_in: t.expiresIn,
    access_token: t.accessToken,
  };
  if (requested.some((s) => s.toLowerCase() === 'offline_access')) body['refresh_token'] = t.refreshToken;
  body['id_token'] = t.idToken;
  body['client_info'] = t.clientInfo;
  return body;
}

/** client_credentials needs exactly `<resource>/.default`, and the resource must be Graph. */
function checkDefaultScope(ec: AadErrorContext, scope: string | undefined, tenant: string): void {
  if (!scope) throw new AadFailure(Aad.missingParameter(ec, 'scope'));
  const parts = scope.split(/\s+/).filter(Boolean);
  if (parts.length !== 1 || !parts[0]?.endsWith('/.default')) throw new AadFailure(Aad.invalidScope(ec, scope));
  const resource = parts[0].slice(0, -'/.default'.length).replace(/\/$/, '');
  if (resource !== GRAPH_RESOURCE && resource.toLowerCase() !== GRAPH_APP_ID) throw new AadFailure(Aad.unknownResource(ec, resource, tenant));
}

/** Delegated permissions granted: what the app has consent for; asking for more is AADSTS65001. */
function delegatedScopes(ctx: SimContext, ec: AadErrorContext, app: RegisteredApp, requested: string[]): string[] {
  const consented = new Map(app.delegatedPermissions.map((p) => [p.toLowerCase(), p]));
  const missing: string[] = [];
  for (const raw of requested) {
    if (OIDC_SCOPES.has(raw.toLowerCase())) continue;
    let name = raw;
    const slash = raw.lastIndexOf('/');
    if (slash >= 0) {
      const resource = raw.slice(0, slash);
      if (resource !== GRAPH_RESOURCE && resource.toLowerCase() !== GRAPH_APP_ID) {
        throw new AadFailure(Aad.unknownResource(ec, resource, ctx.tenantId));
      }
      name = raw.slice(slash + 1);
    }
    if (name === '.default') continue;
    if (!consented.has(name.toLowerCase())) missing.push(name);
  }
  if (missing.length > 0) throw new AadFailure(Aad.consentRequired(ec, app.clientId, missing.join(' ')));
  return [...consented.values()];
}

/**
 * Client authentication: a secret, or a JWT assertion signed with a registered
 * certificate (RFC 7523 §3: iss = sub = client id, aud = the token endpoint, exp).
 * Returns the appidacr value: '1' secret, '2' certificate.
 */
async function authenticateClient(ctx: SimContext, ec: AadErrorContext, app: RegisteredApp, f: Form, required: boolean): Promise<'1' | '2'> {
  const secret = f['client_secret'];
  const assertion = f['client_assertion'];
  if (secret !== undefined) {
    if (!app.secrets.includes(secret)) throw new AadFailure(Aad.invalidSecret(ec, app.clientId));
    return '1';
  }
  if (assertion !== undefined) {
    if (f['client_assertion_type'] !== JWT_BEARER) throw new AadFailure(Aad.missingParameter(ec, 'client_assertion_type'));
    let header: ReturnType<typeof decodeProtectedHeader>;
    try {
      header = decodeProtectedHeader(assertion);
    } catch {
      throw new AadFailure(Aad.assertionInvalid(ec, 'The assertion is not a JWS.'));
    }
    const x5tS256 = typeof header['x5t#S256'] === 'string' ? header['x5t#S256'] : undefined;
    const x5t = typeof header.x5t === 'string' ? header.x5t : undefined;
    if (!x5tS256 && !x5t) throw new AadFailure(Aad.assertionInvalid(ec, 'The assertion header names no certificate (x5t#S256 or x5t).'));
    const cert = app.certificates.find((c) => (x5tS256 !== undefined && c.x5tS256 === x5tS256) || (x5t !== undefined && c.x5t === x5t));
    if (!cert) throw new AadFailure(Aad.unknownCertificate(ec, x5tS256 ?? x5t ?? '', app.clientId));
    const origin = ctx.origin();
    const audiences = [ctx.tenantId, ctx.tenantDomain, 'organizations', 'common'].flatMap((t) => [
      `${origin}/${t}/oauth2/v2.0/token`,
      `${origin}/${t}/v2.0`,
    ]).map((a) => a.toLowerCase());
    try {
      await jwtVerify(assertion, cert.publicKey, {
        algorithms: ['RS256', 'PS256'],
        issuer: app.clientId,
        subject: app.clientId,
        currentDate: new Date(ctx.clock.now()),
        clockTolerance: 300,
        requiredClaims: ['exp', 'aud', 'iss', 'sub'],
      }).then((r) => {
        const aud = r.payload.aud;
        const list = Array.isArray(aud) ? aud : aud === undefined ? [] : [aud];
        if (!list.some((a) => audiences.includes(a.toLowerCase().replace(/\/$/, '')))) {
          throw new AadFailure(Aad.assertionAudience(ec, list.join(',')));
        }
      });
    } catch (error) {
      if (error instanceof AadFailure) throw error;
      if (error instanceof joseErrors.JWTExpired) throw new AadFailure(Aad.assertionExpired(ec));
      if (error instanceof joseErrors.JWSSignatureVerificationFailed) throw new AadFailure(Aad.assertionSignature(ec, 'The signature does not verify with the registered certificate.'));
      if (error instanceof joseErrors.JWTClaimValidationFailed) {
        if (error.claim === 'nbf') throw new AadFailure(Aad.assertionExpired(ec));
        throw new AadFailure(Aad.assertionInvalid(ec, `Claim '${error.claim}' is invalid: it must be the client id, and exp and aud are required.`));
      }
      throw new AadFailure(Aad.assertionInvalid(ec, error instanceof Error ? error.message : 'invalid assertion'));
    }
    return '2';
  }
  if (required) throw new AadFailure(Aad.missingCredential(ec));
  return '1';
}
