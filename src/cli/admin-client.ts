/**
 * A small client of the gateway's admin API for the command-line tool:
 * bearer token, the gateway's https certificate trusted through a CA file
 * (or not checked with `insecure`), and every failure turned into one
 * sentence an administrator can act on.
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';

export interface AdminClientOptions {
  /** e.g. https://gateway.example.com:8443 */
  url: string;
  token: string;
  /** PEM CA file that signed the gateway's certificate. */
  caFile?: string;
  /** Do not check the gateway's certificate. */
  insecure?: boolean;
  timeoutMs?: number;
}

/** A failure with the sentence to print; `status` is the HTTP status when one came. */
export class AdminApiError extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'AdminApiError';
  }
}

const TLS_TRUST_CODES = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_UNTRUSTED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'CERT_HAS_EXPIRED',
]);

function describeNetworkError(err: NodeJS.ErrnoException, origin: string): string {
  const code = err.code ?? '';
  if (code === 'ECONNREFUSED') return `cannot reach the gateway at ${origin}: connection refused (is it running, and is --url right?)`;
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return `cannot reach the gateway at ${origin}: the host name does not resolve (check --url)`;
  if (code === 'ETIMEDOUT' || code === 'ECONNRESET' || code === 'EHOSTUNREACH' || code === 'ENETUNREACH') {
    return `cannot reach the gateway at ${origin}: ${code} (check --url, firewalls, and that the gateway listens there)`;
  }
  if (TLS_TRUST_CODES.has(code)) {
    return `the gateway's certificate at ${origin} is not trusted (${code}): pass --ca <file> with the CA that signed it, or --insecure`;
  }
  if (code === 'EPROTO' || /wrong version number|packet length too long/i.test(err.message)) {
    return `TLS to ${origin} failed (${err.message.split('\n')[0]}): does the gateway serve http rather than https? Check the scheme in --url`;
  }
  return `cannot reach the gateway at ${origin}: ${err.message}`;
}

export class AdminClient {
  private readonly base: URL;
  private readonly ca: string | undefined;

  constructor(private readonly o: AdminClientOptions) {
    let base: URL;
    try {
      base = new URL(o.url);
    } catch {
      throw new AdminApiError(`--url "${o.url}" is not a URL; give one like https://127.0.0.1:8443`);
    }
    if (base.protocol !== 'http:' && base.protocol !== 'https:') {
      throw new AdminApiError(`--url "${o.url}" must start with https:// or http://`);
    }
    this.base = base;
    if (o.caFile !== undefined) {
      try {
        this.ca = readFileSync(o.caFile, 'utf8');
      } catch (err) {
        throw new AdminApiError(`--ca ${o.caFile}: cannot read it (${(err as NodeJS.ErrnoException).code ?? 'error'}); give a PEM CA file`);
      }
    }
  }

  get origin(): string {
    return this.base.origin;
  }

  get<T>(path: string): Promise<T> {
    return this.request<T>('GET', path);
  }

  post<T>(path: string): Promise<T> {
    return this.request<T>('POST', path, '{}');
  }

  private request<T>(method: string, path: string, body?: string): Promise<T> {
    const url = new URL(`/api${path}`, this.base);
    const secure = url.protocol === 'https:';
    const headers: Record<string, string> = { authorization: `Bearer ${this.o.token}`, accept: 'application/json' };
    if (body !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(Buffer.byteLength(body));
    }
    const tlsOptions = secure ? { ...(this.ca !== undefined ? { ca: this.ca } : {}), rejectUnauthorized: this.o.insecure !== true } : {};
    return new Promise<T>((resolve, reject) => {
      const req = (secure ? https : http).request(url, { method, headers, ...tlsOptions }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (err) => reject(new AdminApiError(describeNetworkError(err, this.origin))));
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = text.length > 0 ? JSON.parse(text) : undefined;
          } catch {
            json = undefined;
          }
          const message =
            typeof json === 'object' && json !== null && typeof (json as { message?: unknown }).message === 'string'
              ? (json as { message: string }).message
              : text.slice(0, 200);
          if (status === 401) {
            reject(
              new AdminApiError(
                `the gateway refused the token (401 Unauthorized: ${message}); pass the gateway's admin.token with --token or PRESENCE_GATEWAY_TOKEN`,
                401,
              ),
            );
          } else if (status === 404) {
            reject(new AdminApiError(path.startsWith('/users/') && message.startsWith('no user') ? message : `not found (404): ${message}; is --url the gateway's admin address?`, 404));
          } else if (status >= 400 && !(status === 503 && json !== undefined && path.endsWith('/resync'))) {
            reject(new AdminApiError(`the gateway answered ${status}: ${message}`, status));
          } else if (json === undefined) {
            reject(new AdminApiError(`the gateway's answer to ${method} ${url.pathname} is not JSON (is --url the gateway?)`, status));
          } else {
            resolve(json as T);
          }
        });
      });
      req.setTimeout(this.o.timeoutMs ?? 15_000, () => req.destroy(Object.assign(new Error('no answer in time'), { code: 'ETIMEDOUT' })));
      req.on('error', (err: NodeJS.ErrnoException) => reject(new AdminApiError(describeNetworkError(err, this.origin))));
      req.end(body);
    });
  }
}
