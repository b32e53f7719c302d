/**
 * Tokens through @azure/msal-node: an app token (client secret or
 * certificate) for polling, writing and the directory, and a delegated token
 * per service account for presence subscriptions (Graph takes delegated
 * permission only for those). msal caches every token and renews it five
 * minutes before it expires; concurrent callers share one request.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ConfidentialClientApplication, type AccountInfo, type Configuration, type INetworkModule } from '@azure/msal-node';
import type { GraphConfig } from './config.js';
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
}

/** Delegated scopes a service account asks for: reading presence is all subscriptions need. */
export const DELEGATED_SCOPES = ['Presence.Read.All'];
const DEFAULT_GRAPH_RESOURCE = 'https://graph.microsoft.com';

export class GraphAuth {
  private readonly cca: ConfidentialClientApplication;
  private readonly scopeBase: string;
  private readonly states = new Map<string, TokenStatus>();
  private readonly app: TokenSource;
  private readonly accounts = new Map<string, TokenSource>();
  private readonly logger: Logger;

  constructor(options: GraphAuthOptions) {
    const { config } = options;
    this.logger = options.logger;
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

    this.app = this.source('app', async () => {
      const r = await this.cca.acquireTokenByClientCredential({ scopes: [`${this.scopeBase}/.default`] });
      if (r === null || r.accessToken === '') throw new Error('no access token in the answer');
      return r.accessToken;
    });
    for (const a of config.serviceAccounts) {
      let account: AccountInfo | undefined;
      // Entra ID answers Graph's delegated scopes unqualified; asking the same way lets msal find them in its cache
      const scopes = DELEGATED_SCOPES.map((s) => (this.scopeBase === DEFAULT_GRAPH_RESOURCE ? s : `${this.scopeBase}/${s}`));
      this.accounts.set(
        a.username.toLowerCase(),
        this.source(a.username, async () => {
          if (account !== undefined) {
            try {
              // cached, or renewed with the refresh token when within 5 minutes of expiry
              const r = await this.cca.acquireTokenSilent({ account, scopes });
              if (r !== null && r.accessToken !== '') return r.accessToken;
            } catch (error) {
              this.logger.info({ account: a.username, code: describe(error).code }, 'graph: silent token renewal failed, signing in again');
            }
          }
          // msal-node: acquireTokenByUsernamePassword is deprecated, yet the only non-interactive way to a delegated presence subscription
          const r = await this.cca.acquireTokenByUsernamePassword({ scopes, username: a.username, password: a.password });
          if (r === null || r.accessToken === '') throw new Error('no access token in the answer');
          account = r.account ?? undefined;
          return r.accessToken;
        }),
      );
    }
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
            throw new TokenError(name, d.code, d.message);
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
    if (s === undefined) throw new Error(`no service account "${username}" in graph.serviceAccounts`);
    return s;
  }

  serviceAccountNames(): string[] {
    return [...this.accounts.values()].map((s) => s.name);
  }

  status(): TokenStatus[] {
    return [...this.states.values()].map((s) => ({ ...s }));
  }
}
