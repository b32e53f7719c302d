/**
 * Tokens through @azure/msal-node: an app token (client secret or
 * certificate) for polling, writing and the directory, and a delegated token
 * per service account for presence subscriptions (Graph takes delegated
 * permission only for those). msal caches every token and renews it five
 * minutes before it expires; concurrent callers share one request.
 *
 * A service account signs in one of two ways:
 * - deviceCode (default): an administrator signs it in once with the OAuth
 *   2.0 device authorization grant (PublicClientApplication
 *   .acquireTokenByDeviceCode: msal-node offers it on the public client only,
 *   so the app registration must allow public client flows). MFA happens in
 *   the browser. The refresh token stays in msal's cache, kept sealed in the
 *   store (token-cache.ts), and acquireTokenSilent renews from it.
 * - password (ROPC, acquireTokenByUsernamePassword, deprecated in msal-node):
 *   only for an account excluded from MFA.
 * A refresh token the service refuses (invalid_grant, interaction_required)
 * or a refused password (AADSTS50126, 50076, 50057, 50053, ...) puts the
 * account in `failed` and it is not tried again: a new sign-in (device code)
 * or a changed config (password) is needed. Repeating a wrong password would
 * trigger Entra's Smart Lockout.
 */
import { randomBytes, randomUUID, scryptSync, timingSafeEqual, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import {
  ConfidentialClientApplication,
  InteractionRequiredAuthError,
  PublicClientApplication,
  type AccountInfo,
  type Configuration,
  type DeviceCodeRequest,
  type INetworkModule,
  type NetworkRequestOptions,
} from '@azure/msal-node';
import { AccountSignIn, type AccountStatus } from './account-sign-in.js';
import { resolveTokenCacheKey, type GraphConfig } from './config.js';
import { MemoryTokenCacheStore, tokenCachePlugin, type TokenCacheStore } from './token-cache.js';
import type { Logger } from '../util/logger.js';

export interface TokenSource {
  /** Who the token is for: "app" or the service account's username. */
  readonly name: string;
  getToken(): Promise<string>;
}

export interface TokenStatus {
  name: string;
  ok: boolean;
  lastAcquiredAt?: number;
  lastError?: string;
}

/** Thrown when a token cannot be had; carries msal's error code (never the secret or the token). */
export class TokenError extends Error {
  constructor(
    readonly source: string,
    readonly code: string,
    message: string,
  ) {
    super(`token for ${source}: ${message}`);
    this.name = 'TokenError';
  }
}

/** The hex SHA-256 thumbprint msal wants, and the certificate's PEM for x5c. */
export function certificateCredential(certPem: string, keyPem: string): { thumbprintSha256: string; privateKey: string; x5c: string } {
  const cert = new X509Certificate(certPem);
  return { thumbprintSha256: cert.fingerprint256.replace(/:/g, '').toLowerCase(), privateKey: keyPem, x5c: cert.toString() };
}

function describe(error: unknown): { code: string; message: string } {
  if (error !== null && typeof error === 'object') {
    const e = error as { errorCode?: unknown; errorMessage?: unknown; message?: unknown };
    const code = typeof e.errorCode === 'string' && e.errorCode !== '' ? e.errorCode : 'error';
    const text = typeof e.errorMessage === 'string' && e.errorMessage !== '' ? e.errorMessage : typeof e.message === 'string' ? e.message : String(error);
    // AADSTS texts run to several lines with trace ids; the first line says what is wrong
    return { code, message: text.split(/\r?\n/)[0] ?? text };
  }
  return { code: 'error', message: String(error) };
}

export interface GraphAuthOptions {
  config: GraphConfig;
  logger: Logger;
  /** msal's HTTP client (a CA-trusting one when trustedCaPath is set); msal's own when absent. */
  networkClient?: INetworkModule;
  /** Read a PEM file (tests may replace it). */
  readFile?: (path: string) => string;
  /** Where the sealed token cache of device-code accounts lives (default: memory, lost at exit). */
  tokenCache?: TokenCacheStore;
  /** The cache key (default: resolved from config and `env`, see resolveTokenCacheKey). */
  tokenCacheKey?: Buffer;
  env?: Readonly<Record<string, string | undefined>>;
  /** How long startSignIn waits for the code (default 30 s). */
  promptTimeoutMs?: number;
  /** Where refused passwords are remembered across restarts (default: memory). */
  refusals?: PasswordRefusalStore;
}

/**
 * A refused password, remembered so a restart with the same config does not
 * try it again (each try counts towards Smart Lockout). The password itself
 * is not kept: a salted scrypt of it tells "the same password" from "changed".
 */
export interface PasswordRefusal {
  code: string;
  message: string;
  /** ms epoch */
  at: number;
  salt: string;
  hash: string;
}

export interface PasswordRefusalStore {
  get(account: string): PasswordRefusal | undefined;
  set(account: string, refusal: PasswordRefusal): void;
  delete(account: string): void;
}

export class MemoryPasswordRefusalStore implements PasswordRefusalStore {
  private readonly m = new Map<string, PasswordRefusal>();
  get(account: string): PasswordRefusal | undefined {
    return this.m.get(account.toLowerCase());
  }
  set(account: string, refusal: PasswordRefusal): void {
    this.m.set(account.toLowerCase(), { ...refusal });
  }
  delete(account: string): void {
    this.m.delete(account.toLowerCase());
  }
}

function passwordHash(password: string, salt: Buffer): Buffer {
  return scryptSync(password, salt, 32);
}

function samePassword(r: PasswordRefusal, password: string): boolean {
  const want = Buffer.from(r.hash, 'base64');
  const got = passwordHash(password, Buffer.from(r.salt, 'base64'));
  return want.length === got.length && timingSafeEqual(want, got);
}

/** Delegated scopes a service account asks for: reading presence is all subscriptions need. */
export const DELEGATED_SCOPES = ['Presence.Read.All'];
const DEFAULT_GRAPH_RESOURCE = 'https://graph.microsoft.com';
/** The token cache's name in the store. */
export const TOKEN_CACHE_NAME = 'delegated';

/**
 * Password refusals that no retry can cure (learn.microsoft.com/entra/identity-platform/reference-error-codes):
 * 50126 wrong password, 50076/50079 MFA required or to be registered, 50057 disabled, 50053 locked (Smart
 * Lockout), 50055 password expired, 50034 no such user, 53003 blocked by Conditional Access.
 */
export const PERMANENT_PASSWORD_CODES = new Set([50126, 50076, 50079, 50057, 50053, 50055, 50034, 53003]);
/** msal error codes meaning the refresh token is no good any more (msal-common InteractionRequiredAuthError). */
const REFRESH_REFUSED = new Set(['invalid_grant', 'interaction_required', 'consent_required', 'login_required', 'bad_token', 'no_tokens_found', 'refresh_token_expired']);

function aadstsCode(text: string): number | undefined {
  const m = /AADSTS(\d+)/.exec(text);
  return m?.[1] === undefined ? undefined : Number(m[1]);
}

function refreshRefused(error: unknown): boolean {
  if (error instanceof InteractionRequiredAuthError) return true;
  return REFRESH_REFUSED.has(describe(error).code);
}

export class UnknownAccountError extends Error {
  override readonly name = 'UnknownAccountError';
}
export class SignInNotApplicableError extends Error {
  override readonly name = 'SignInNotApplicableError';
}

interface Delegated {
  signIn: AccountSignIn;
  account: AccountInfo | undefined;
  /** the device-code request under way (cancel on stop) */
  request: DeviceCodeRequest | undefined;
  /** the failure a failed account answers with, without asking Entra again */
  refusal: TokenError | undefined;
}

/** Keeps the error body of the device code endpoint, which msal does not report (keyed by correlation id). */
class DeviceCodeErrors {
  private readonly errors = new Map<string, string>();
  wrap(inner: INetworkModule): INetworkModule {
    return {
      sendGetRequestAsync: (url, o) => inner.sendGetRequestAsync(url, o),
      sendPostRequestAsync: async <T>(url: string, o?: NetworkRequestOptions) => {
        const r = await inner.sendPostRequestAsync<T>(url, o);
        const body = r.body as { error?: unknown; error_description?: unknown } | undefined;
        const id = (o as { correlationId?: unknown } | undefined)?.correlationId;
        if (/\/devicecode(\?|$)/.test(url) && typeof id === 'string' && typeof body?.error === 'string') {
          const d = typeof body.error_description === 'string' ? body.error_description.split(/\r?\n/)[0] ?? '' : '';
          this.errors.set(id, `${body.error}: ${d}`.trim());
        }
        return r;
      },
    };
  }
  take(correlationId: string): string | undefined {
    const e = this.errors.get(correlationId);
    this.errors.delete(correlationId);
    return e;
  }
}

/** Why a device-code sign-in did not complete, in an administrator's words. */
function signInFailure(code: string, message: string): string {
  const m = `${code} ${message}`;
  if (/authorization_declined|access_denied/.test(m)) return 'the sign-in was declined at the verification page; sign in again';
  if (/expired_token|device_code_expired/.test(m)) return 'the code expired before the sign-in was completed; sign in again';
  if (/invalid_client|AADSTS7000218/.test(m)) {
    return 'the app registration does not allow public client flows (Entra admin center: App registrations > the app > Authentication > Allow public client flows: Yes)';
  }
  if (/device_code_polling_cancelled/.test(m)) return 'the sign-in was cancelled (the gateway stopped)';
  return `the sign-in failed: ${code}: ${message}`;
}

export class GraphAuth {
  private readonly cca: ConfidentialClientApplication;
  private readonly pca: PublicClientApplication | undefined;
  private readonly scopeBase: string;
  private readonly scopes: string[];
  private readonly states = new Map<string, TokenStatus>();
  private readonly app: TokenSource;
  private readonly accounts = new Map<string, TokenSource>();
  private readonly delegated = new Map<string, Delegated>();
  private readonly logger: Logger;
  private readonly deviceErrors = new DeviceCodeErrors();
  private readonly promptTimeoutMs: number;
  private ready: Promise<void> = Promise.resolve();
  private stopped = false;
  private readonly refusals: PasswordRefusalStore;

  constructor(options: GraphAuthOptions) {
    const { config } = options;
    this.logger = options.logger;
    this.promptTimeoutMs = options.promptTimeoutMs ?? 30_000;
    this.refusals = options.refusals ?? new MemoryPasswordRefusalStore();
    const read = options.readFile ?? ((p: string) => readFileSync(p, 'utf8'));
    const host = new URL(config.authorityHost);
    const authority = `${host.origin}${host.pathname.replace(/\/+$/, '')}/${config.tenantId}`;
    const auth: Configuration['auth'] = {
      clientId: config.clientId,
      authority,
      // a host msal does not know would otherwise send it to Microsoft for instance discovery
      knownAuthorities: [host.host],
    };
    if (config.clientSecret !== undefined) auth.clientSecret = config.clientSecret;
    else if (config.certificate !== undefined) auth.clientCertificate = certificateCredential(read(config.certificate.certPath), read(config.certificate.keyPath));
    const configuration: Configuration = { auth };
    if (options.networkClient !== undefined) configuration.system = { networkClient: options.networkClient };
    this.cca = new ConfidentialClientApplication(configuration);
    this.scopeBase = config.graphResource.replace(/\/+$/, '');
    // Entra ID answers Graph's delegated scopes unqualified; asking the same way lets msal find them in its cache
    this.scopes = DELEGATED_SCOPES.map((s) => (this.scopeBase === DEFAULT_GRAPH_RESOURCE ? s : `${this.scopeBase}/${s}`));

    this.app = this.source('app', async () => {
      const r = await this.cca.acquireTokenByClientCredential({ scopes: [`${this.scopeBase}/.default`] });
      if (r === null || r.accessToken === '') throw new Error('no access token in the answer');
      return r.accessToken;
    });

    if (config.serviceAccounts.some((a) => a.signIn === 'deviceCode')) {
      const key = options.tokenCacheKey ?? resolveTokenCacheKey(config, options.env ?? process.env);
      if (key === undefined) throw new Error('no token cache key');
      const store = options.tokenCache ?? new MemoryTokenCacheStore();
      if (!store.persistent) this.logger.warn('graph: the token cache is not persistent (no store file): device-code accounts need a new sign-in after a restart');
      this.pca = new PublicClientApplication({
        auth: { clientId: config.clientId, authority, knownAuthorities: [host.host] },
        cache: { cachePlugin: tokenCachePlugin({ name: TOKEN_CACHE_NAME, key, store, logger: this.logger }) },
        ...(options.networkClient !== undefined ? { system: { networkClient: this.deviceErrors.wrap(options.networkClient) } } : {}),
      });
    }

    for (const a of config.serviceAccounts) {
      const d: Delegated = { signIn: new AccountSignIn(a.username, a.signIn), account: undefined, request: undefined, refusal: undefined };
      this.delegated.set(a.username.toLowerCase(), d);
      if (a.signIn === 'password') this.recallRefusal(d, a.username, a.password ?? '');
      const acquire = a.signIn === 'password' ? () => this.passwordToken(d, a.username, a.password ?? '') : () => this.deviceCodeToken(d);
      this.accounts.set(a.username.toLowerCase(), this.source(a.username, acquire));
    }
  }

  /** Read the stored token cache: device-code accounts signed in before are signed in again. Call before the first token. */
  start(): Promise<void> {
    const pca = this.pca;
    if (pca === undefined) return this.ready;
    this.ready = (async () => {
      let cached: AccountInfo[] = [];
      try {
        cached = await pca.getTokenCache().getAllAccounts();
      } catch (error) {
        this.logger.warn({ err: error }, 'graph: cannot read the token cache');
      }
      for (const d of this.delegated.values()) {
        if (d.signIn.method !== 'deviceCode') continue;
        const account = cached.find((c) => c.username.toLowerCase() === d.signIn.name.toLowerCase());
        if (account === undefined) continue;
        d.account = account;
        d.signIn.to('signed-in', { reason: 'signed in earlier (token cache from the store)' });
        this.logger.info({ account: d.signIn.name }, 'graph: service account signed in from the stored token cache');
      }
    })();
    return this.ready;
  }

  /** A password refused in an earlier run stays refused while the config holds the same password. */
  private recallRefusal(d: Delegated, username: string, password: string): void {
    let r: PasswordRefusal | undefined;
    try {
      r = this.refusals.get(username);
    } catch {
      return;
    }
    if (r === undefined) return;
    if (!samePassword(r, password)) {
      // the config changed: try the new password
      this.refusals.delete(username);
      return;
    }
    d.refusal = new TokenError(username, r.code, r.message);
    d.signIn.to('failed', {
      reason: `the password sign-in was refused on ${new Date(r.at).toISOString()} (${aadstsCode(r.message) !== undefined ? `AADSTS${aadstsCode(r.message)}` : r.code}) and the password in graph.serviceAccounts is unchanged: not tried again (Smart Lockout). Fix the account or the password, or use signIn: deviceCode`,
      code: r.code,
    });
    this.logger.warn({ account: username }, 'graph: password refused in an earlier run and unchanged in the config; not tried');
  }

  private refuse(d: Delegated, error: TokenError, reason: string): TokenError {
    d.refusal = error;
    d.account = undefined;
    d.signIn.to('failed', { reason, code: error.code });
    return error;
  }

  private async passwordToken(d: Delegated, username: string, password: string): Promise<string> {
    if (d.refusal !== undefined) throw d.refusal;
    if (d.account !== undefined) {
      try {
        // cached, or renewed with the refresh token when within 5 minutes of expiry
        const r = await this.cca.acquireTokenSilent({ account: d.account, scopes: this.scopes });
        if (r !== null && r.accessToken !== '') return r.accessToken;
      } catch (error) {
        this.logger.info({ account: username, code: describe(error).code }, 'graph: silent token renewal failed, signing in again');
      }
    }
    try {
      // msal-node: acquireTokenByUsernamePassword is deprecated; kept for accounts excluded from MFA (signIn: password)
      const r = await this.cca.acquireTokenByUsernamePassword({ scopes: this.scopes, username, password });
      if (r === null || r.accessToken === '') throw new Error('no access token in the answer');
      d.account = r.account ?? undefined;
      if (d.signIn.state !== 'signed-in') d.signIn.to('signed-in', { reason: 'signed in with the password' });
      return r.accessToken;
    } catch (error) {
      const x = describe(error);
      const aadsts = aadstsCode(x.message);
      if (aadsts !== undefined && PERMANENT_PASSWORD_CODES.has(aadsts)) {
        const e = new TokenError(username, x.code, x.message);
        const salt = randomBytes(16);
        try {
          this.refusals.set(username, { code: x.code, message: x.message, at: Date.now(), salt: salt.toString('base64'), hash: passwordHash(password, salt).toString('base64') });
        } catch (err) {
          this.logger.warn({ err, account: username }, 'graph: cannot remember the refused password; a restart tries it once more');
        }
        this.logger.warn({ account: username, code: `AADSTS${aadsts}` }, 'graph: password sign-in refused; not tried again until the config changes (no Smart Lockout)');
        throw this.refuse(d, e, `the password sign-in was refused (AADSTS${aadsts}); not tried again until graph.serviceAccounts changes and the gateway restarts. With MFA, use signIn: deviceCode`);
      }
      throw error;
    }
  }

  private async deviceCodeToken(d: Delegated): Promise<string> {
    await this.ready;
    const pca = this.pca;
    const name = d.signIn.name;
    if (d.refusal !== undefined && !d.signIn.usable()) throw d.refusal;
    if (pca === undefined || d.account === undefined || !d.signIn.usable()) {
      throw new TokenError(name, 'sign_in_required', d.signIn.status().reason ?? `not signed in: run presence-gateway-cli signin ${name}`);
    }
    try {
      const r = await pca.acquireTokenSilent({ account: d.account, scopes: this.scopes });
      if (r === null || r.accessToken === '') throw new Error('no access token in the answer');
      return r.accessToken;
    } catch (error) {
      if (!refreshRefused(error)) throw error;
      const x = describe(error);
      const stale = d.account;
      // the refresh token is no good: forget it (the store too), so a restart does not try it again either
      await pca
        .getTokenCache()
        .removeAccount(stale)
        .catch(() => undefined);
      this.logger.warn({ account: name, code: x.code, aadsts: aadstsCode(x.message) }, 'graph: refresh token refused; the account needs a new sign-in (its people are polled)');
      throw this.refuse(d, new TokenError(name, x.code, x.message), `the refresh token was refused (${x.message}); sign in again`);
    }
  }

  /**
   * Start a device-code sign-in for `username` (or return the one under way).
   * Resolves once the code to enter is known (status.prompt) or the start failed.
   */
  async startSignIn(username: string): Promise<AccountStatus> {
    const d = this.delegated.get(username.toLowerCase());
    if (d === undefined) throw new UnknownAccountError(`no service account "${username}" in graph.serviceAccounts`);
    if (d.signIn.method !== 'deviceCode' || this.pca === undefined) {
      throw new SignInNotApplicableError(`graph.serviceAccounts: ${d.signIn.name} signs in with its password (signIn: password); device-code sign-in is for signIn: deviceCode`);
    }
    if (this.stopped) throw new SignInNotApplicableError('the Graph side is stopping');
    await this.ready;
    const pending = d.signIn.prompt;
    if (d.signIn.state === 'signing-in' && pending !== undefined && pending.expiresAt > Date.now()) return d.signIn.status();
    if (d.request !== undefined) d.request.cancel = true;
    const pca = this.pca;
    const name = d.signIn.name;
    const correlationId = randomUUID();
    let promptSeen: () => void = () => undefined;
    const prompted = new Promise<void>((resolve) => (promptSeen = resolve));
    const request: DeviceCodeRequest = {
      scopes: [...this.scopes, 'offline_access'],
      correlationId,
      deviceCodeCallback: (r) => {
        if (request.cancel === true) return;
        if (typeof r.userCode !== 'string' || r.userCode === '') {
          // the device code endpoint answered an error; msal polls on regardless: stop it
          request.cancel = true;
          promptSeen();
          return;
        }
        const prompt = { userCode: r.userCode, verificationUri: r.verificationUri, message: r.message, expiresAt: Date.now() + r.expiresIn * 1000 };
        d.signIn.to('signing-in', { reason: `waiting for the sign-in: open ${r.verificationUri} and enter ${r.userCode}`, prompt });
        this.logger.info({ account: name, verificationUri: r.verificationUri, expiresInSec: r.expiresIn }, 'graph: device code sign-in started');
        promptSeen();
      },
    };
    d.request = request;
    d.signIn.to('signing-in', { reason: 'asking Entra ID for a code' });
    const flow = pca.acquireTokenByDeviceCode(request).then(
      async (r) => {
        if (d.request !== request) return;
        d.request = undefined;
        const got = r?.account ?? undefined;
        if (got === undefined || got.username.toLowerCase() !== name.toLowerCase()) {
          if (got !== undefined) await pca.getTokenCache().removeAccount(got).catch(() => undefined);
          this.afterFailedSignIn(d, 'wrong_account', `signed in as ${got?.username ?? 'nobody'}, but the account is ${name}: sign in again as ${name}`);
          return;
        }
        d.account = got;
        d.refusal = undefined;
        d.signIn.to('signed-in', { reason: 'signed in with a device code' });
        this.logger.info({ account: name }, 'graph: service account signed in');
      },
      (error: unknown) => {
        if (d.request !== request) return;
        d.request = undefined;
        const x = describe(error);
        const endpoint = this.deviceErrors.take(correlationId);
        const reason = endpoint !== undefined ? `the device code request was refused: ${endpoint}` : signInFailure(x.code, x.message);
        this.logger.warn({ account: name, code: x.code, reason }, 'graph: device code sign-in did not complete');
        this.afterFailedSignIn(d, endpoint !== undefined ? 'devicecode_refused' : x.code, reason);
      },
    );
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([prompted, flow, new Promise<void>((resolve) => (timer = setTimeout(resolve, this.promptTimeoutMs)))]);
    clearTimeout(timer);
    return d.signIn.status();
  }

  private afterFailedSignIn(d: Delegated, code: string, reason: string): void {
    // an earlier sign-in that still holds stays in use
    if (d.signIn.status().usable && d.account !== undefined) d.signIn.to('signed-in', { reason: `a new sign-in did not complete: ${reason}`, code });
    else d.signIn.to('failed', { reason, code });
  }

  private source(name: string, acquire: () => Promise<string>): TokenSource {
    const status: TokenStatus = { name, ok: false };
    this.states.set(name, status);
    let pending: Promise<string> | undefined;
    return {
      name,
      getToken: () => {
        pending ??= acquire().then(
          (token) => {
            pending = undefined;
            if (!status.ok) this.logger.info({ tokenFor: name }, 'graph: token acquired');
            status.ok = true;
            status.lastAcquiredAt = Date.now();
            delete status.lastError;
            return token;
          },
          (error: unknown) => {
            pending = undefined;
            const d = describe(error);
            status.ok = false;
            status.lastError = `${d.code}: ${d.message}`;
            this.logger.warn({ tokenFor: name, code: d.code, reason: d.message }, 'graph: cannot get a token');
            throw error instanceof TokenError ? error : new TokenError(name, d.code, d.message);
          },
        );
        return pending;
      },
    };
  }

  /** The application token (client credentials). */
  appToken(): TokenSource {
    return this.app;
  }

  /** The delegated token of a configured service account. */
  serviceAccountToken(username: string): TokenSource {
    const s = this.accounts.get(username.toLowerCase());
    if (s === undefined) throw new UnknownAccountError(`no service account "${username}" in graph.serviceAccounts`);
    return s;
  }

  /** Whether subscriptions may use the account now, and a way to hear when that changes. */
  availability(username: string): { usable(): boolean; onChange(listener: () => void): () => void } {
    const d = this.delegated.get(username.toLowerCase());
    if (d === undefined) throw new UnknownAccountError(`no service account "${username}" in graph.serviceAccounts`);
    return { usable: () => d.signIn.usable(), onChange: (l) => d.signIn.onChange(l) };
  }

  serviceAccountNames(): string[] {
    return [...this.accounts.values()].map((s) => s.name);
  }

  accountStatus(): AccountStatus[] {
    return [...this.delegated.values()].map((d) => d.signIn.status());
  }

  status(): TokenStatus[] {
    return [...this.states.values()].map((s) => ({ ...s }));
  }

  /** Cancel device-code sign-ins under way (msal stops at its next poll). */
  stop(): void {
    this.stopped = true;
    for (const d of this.delegated.values()) {
      if (d.request !== undefined) d.request.cancel = true;
    }
  }
}
