import { newGuid } from './ids.js';

/** An Entra ID token-endpoint error as the service returns it (status + JSON body). */
export interface AadError {
  status: number;
  body: {
    error: string;
    error_description: string;
    error_codes: number[];
    timestamp: string;
    trace_id: string;
    correlation_id: string;
    error_uri: string;
    suberror?: string;
    claims?: string;
  };
}

export interface AadErrorContext {
  now: number;
  correlationId: string;
  origin: string;
}

function aadTimestamp(ms: number): string {
  // e.g. 2024-05-01 10:11:12Z
  return new Date(ms).toISOString().replace('T', ' ').replace(/\.\d{3}Z$/, 'Z');
}

/** Build an AADSTS error: the description starts with "AADSTS<code>: " and ends with the trace data. */
export function aadError(
  ctx: AadErrorContext,
  status: number,
  error: string,
  code: number,
  text: string,
  extra: { suberror?: string; claims?: string } = {},
): AadError {
  const traceId = newGuid();
  const timestamp = aadTimestamp(ctx.now);
  return {
    status,
    body: {
      error,
      // lines as Entra separates them (v2-oauth2-auth-code-flow, error response): CRLF before each trace line
      error_description: `AADSTS${code}: ${text}\r\nTrace ID: ${traceId}\r\nCorrelation ID: ${ctx.correlationId}\r\nTimestamp: ${timestamp}`,
      error_codes: [code],
      timestamp,
      trace_id: traceId,
      correlation_id: ctx.correlationId,
      error_uri: `${ctx.origin}/error?code=${code}`,
      ...extra,
    },
  };
}

/** The errors the simulator knows, by name, so routes read like the rules they apply. */
export const Aad = {
  tenantNotFound: (c: AadErrorContext, tenant: string) =>
    aadError(c, 400, 'invalid_request', 90002, `Tenant '${tenant}' not found. Check the tenant ID and the cloud you are signing in to.`),
  unknownClient: (c: AadErrorContext, clientId: string, tenant: string) =>
    aadError(
      c,
      400,
      'unauthorized_client',
      700016,
      `Application with identifier '${clientId}' was not found in the directory '${tenant}'. The application may not be registered in this tenant, or was sent to the wrong tenant.`,
    ),
  invalidSecret: (c: AadErrorContext, clientId: string) =>
    aadError(c, 401, 'invalid_client', 7000215, `Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '${clientId}'.`),
  missingCredential: (c: AadErrorContext) =>
    aadError(c, 401, 'invalid_client', 7000218, `The request body must contain the following parameter: 'client_assertion' or 'client_secret'.`),
  assertionSignature: (c: AadErrorContext, detail: string) =>
    aadError(c, 401, 'invalid_client', 700027, `Client assertion failed signature validation. ${detail}`),
  assertionExpired: (c: AadErrorContext) =>
    aadError(c, 401, 'invalid_client', 700024, 'Client assertion is not within its valid time range.'),
  assertionInvalid: (c: AadErrorContext, detail: string) =>
    aadError(c, 401, 'invalid_client', 50027, `JWT token is invalid or malformed. ${detail}`),
  assertionAudience: (c: AadErrorContext, aud: string) =>
    aadError(c, 401, 'invalid_client', 700021, `Client assertion audience claim does not match Realm issuer. Audience: '${aud}'.`),
  unknownCertificate: (c: AadErrorContext, thumbprint: string, clientId: string) =>
    aadError(c, 401, 'invalid_client', 700027, `Client assertion contains an invalid signature. [Reason - The key was not found., Thumbprint of key used by client: '${thumbprint}', Please visit the Azure Portal to verify that the certificate is registered for app '${clientId}'.]`),
  invalidScope: (c: AadErrorContext, scope: string) =>
    aadError(c, 400, 'invalid_scope', 1002012, `The provided value for scope ${scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).`),
  unknownResource: (c: AadErrorContext, resource: string, tenant: string) =>
    aadError(c, 400, 'invalid_resource', 500011, `The resource principal named ${resource} was not found in the tenant named ${tenant}.`),
  unknownUser: (c: AadErrorContext, username: string, tenant: string) =>
    aadError(c, 400, 'invalid_grant', 50034, `The user account ${username} does not exist in the ${tenant} directory. To sign into this application, the account must be added to the directory.`),
  wrongPassword: (c: AadErrorContext) =>
    aadError(c, 400, 'invalid_grant', 50126, 'Error validating credentials due to invalid username or password.'),
  mfaRequired: (c: AadErrorContext, resource: string) =>
    aadError(
      c,
      400,
      'invalid_grant',
      50076,
      `Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access '${resource}'.`,
      { suberror: 'basic_action', claims: '{"access_token":{"capolids":{"essential":true,"values":["sim-mfa-policy"]}}}' },
    ),
  consentRequired: (c: AadErrorContext, clientId: string, scopes: string) =>
    aadError(
      c,
      400,
      'invalid_grant',
      65001,
      `The user or administrator has not consented to use the application with ID '${clientId}'. Missing: ${scopes}. Send an interactive authorization request for this user and resource.`,
      { suberror: 'consent_required' },
    ),
  badRefreshToken: (c: AadErrorContext) =>
    aadError(c, 400, 'invalid_grant', 9002313, 'Invalid request. Request is malformed or invalid: the refresh token is unknown or expired.'),
  unsupportedGrant: (c: AadErrorContext, grant: string) =>
    aadError(c, 400, 'unsupported_grant_type', 70003, `The app requested an unsupported grant type '${grant}'.`),
  missingParameter: (c: AadErrorContext, name: string) =>
    aadError(c, 400, 'invalid_request', 900144, `The request body must contain the following parameter: '${name}'.`),
  lockedOut: (c: AadErrorContext) =>
    aadError(c, 400, 'invalid_grant', 50053, "Your account is locked because you've tried to sign in too many times with an incorrect user ID or password."),
  disabledAccount: (c: AadErrorContext) =>
    aadError(c, 400, 'invalid_grant', 50057, 'The user account is disabled.'),
  // device authorization grant (learn.microsoft.com/entra/identity-platform/v2-oauth2-device-code, "Expected errors";
  // codes from reference-error-codes: 70016 AuthorizationPending, 70018 BadVerificationCode, 70019 CodeExpired, 65004 UserDeclinedConsent)
  authorizationPending: (c: AadErrorContext) =>
    aadError(c, 400, 'authorization_pending', 70016, 'OAuth 2.0 device flow error. Authorization is pending. Continue polling.'),
  // slow_down is RFC 8628 §3.5; Entra documents no code of its own for it: the authorization is still pending
  slowDown: (c: AadErrorContext, intervalSec: number) =>
    aadError(c, 400, 'slow_down', 70016, `OAuth 2.0 device flow error. Authorization is pending. Poll no more often than every ${intervalSec} seconds.`),
  deviceCodeExpired: (c: AadErrorContext) =>
    aadError(c, 400, 'expired_token', 70019, 'Verification code expired. Have the user retry the sign-in.'),
  deviceCodeDeclined: (c: AadErrorContext) =>
    aadError(c, 400, 'authorization_declined', 65004, 'User declined to consent to access the app.'),
  badVerificationCode: (c: AadErrorContext) =>
    aadError(c, 400, 'bad_verification_code', 70018, "The provided value for the input parameter 'device_code' is not valid."),
  // refresh token refusals (reference-error-codes: 50173 FreshTokenNeeded, 70008 ExpiredOrRevokedGrant)
  revokedGrant: (c: AadErrorContext) =>
    aadError(c, 400, 'invalid_grant', 50173, 'The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might have changed or reset their password, or an administrator revoked their sessions.'),
  expiredGrant: (c: AadErrorContext, issuedAt: string) =>
    aadError(c, 400, 'invalid_grant', 70008, `The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource. The token was issued on ${issuedAt}.`),
  serviceUnavailable: (c: AadErrorContext) =>
    aadError(c, 503, 'temporarily_unavailable', 90033, 'A transient error has occurred. Please try again.'),
} as const;

export function newCorrelationId(header: unknown): string {
  return typeof header === 'string' && header.length > 0 && header.length <= 100 ? header : newGuid();
}
