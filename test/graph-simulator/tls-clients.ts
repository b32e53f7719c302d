/**
 * Test-side HTTPS plumbing that trusts the simulator's CA, for the real
 * libraries: an msal-node networkClient and a Graph client middleware chain
 * whose last handler does the HTTP over node:https. Nothing here knows it is
 * talking to a simulator: the same code would trust any private CA.
 */
import https from 'node:https';
import http from 'node:http';
import type { INetworkModule, NetworkRequestOptions, NetworkResponse } from '@azure/msal-node';
import {
  AuthenticationHandler,
  Client,
  RedirectHandler,
  RetryHandler,
  RetryHandlerOptions,
  TelemetryHandler,
  type AuthenticationProvider,
  type Context,
  type Middleware,
} from '@microsoft/microsoft-graph-client';

interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

function request(agent: https.Agent, url: string, method: string, headers: Record<string, string>, body: string | undefined, timeoutMs: number): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const target = new URL(url);
    const lib = target.protocol === 'https:' ? https : http;
    const req = lib.request(target, { method, headers, ...(target.protocol === 'https:' ? { agent } : {}) }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const out: Record<string, string> = {};
        for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) out[k] = Array.isArray(v) ? v.join(', ') : v;
        resolve({ status: res.statusCode ?? 0, headers: out, body: Buffer.concat(chunks).toString('utf8') });
      });
      res.on('error', reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`timeout after ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** msal-node system.networkClient trusting `caPem`. */
export function msalNetworkClient(caPem: string): INetworkModule & { close(): void } {
  const agent = new https.Agent({ ca: caPem, keepAlive: false });
  const send = async <T>(url: string, method: string, options?: NetworkRequestOptions, timeout?: number): Promise<NetworkResponse<T>> => {
    const r = await request(agent, url, method, { ...(options?.headers ?? {}) }, method === 'POST' ? (options?.body ?? '') : undefined, timeout ?? 30_000);
    let body: unknown = {};
    try {
      body = r.body === '' ? {} : JSON.parse(r.body);
    } catch {
      body = {};
    }
    return { status: r.status, headers: r.headers, body: body as T };
  };
  return {
    sendGetRequestAsync: <T>(url: string, options?: NetworkRequestOptions, timeout?: number) => send<T>(url, 'GET', options, timeout),
    sendPostRequestAsync: <T>(url: string, options?: NetworkRequestOptions) => send<T>(url, 'POST', options),
    close: () => agent.destroy(),
  };
}

/** The last Graph middleware: performs the request with node:https and a trusted CA, returning a fetch Response. */
class TrustingHttpHandler implements Middleware {
  constructor(
    private readonly agent: https.Agent,
    private readonly timeoutMs: number,
  ) {}

  async execute(context: Context): Promise<void> {
    const req = context.request;
    const url = typeof req === 'string' ? req : req instanceof Request ? req.url : String(req);
    const opts = context.options ?? {};
    const headers: Record<string, string> = {};
    const h = opts.headers;
    if (h instanceof Headers) h.forEach((v, k) => (headers[k] = v));
    else if (Array.isArray(h)) for (const [k, v] of h as Array<[string, string]>) headers[k] = v;
    else if (h && typeof h === 'object') for (const [k, v] of Object.entries(h as Record<string, string>)) headers[k] = String(v);
    const body = typeof opts.body === 'string' ? opts.body : opts.body === undefined || opts.body === null ? undefined : String(opts.body);
    if (body !== undefined && headers['content-length'] === undefined) headers['content-length'] = String(Buffer.byteLength(body));
    const r = await request(this.agent, url, (opts.method ?? 'GET').toUpperCase(), headers, body, this.timeoutMs);
    const noBody = r.status === 204 || r.status === 304;
    context.response = new Response(noBody ? null : r.body, { status: r.status, headers: r.headers });
  }
}

export interface GraphClientOptions {
  baseUrl: string;
  hostname: string;
  caPem: string;
  getToken: () => Promise<string>;
  /** RetryHandler settings; maxRetries 0 shows 429s to the caller */
  retry?: { delaySec?: number; maxRetries?: number };
  timeoutMs?: number;
}

/** A Graph client (Client.initWithMiddleware with baseUrl and customHosts) over a CA-trusting handler. */
export function graphClient(options: GraphClientOptions): { client: Client; close(): void } {
  const agent = new https.Agent({ ca: options.caPem, keepAlive: true });
  const authProvider: AuthenticationProvider = { getAccessToken: () => options.getToken() };
  const auth = new AuthenticationHandler(authProvider);
  const retry = new RetryHandler(new RetryHandlerOptions(options.retry?.delaySec ?? 3, options.retry?.maxRetries ?? 3));
  const redirect = new RedirectHandler();
  const telemetry = new TelemetryHandler();
  const http = new TrustingHttpHandler(agent, options.timeoutMs ?? 15_000);
  auth.setNext(retry);
  retry.setNext(redirect);
  redirect.setNext(telemetry);
  telemetry.setNext(http);
  const client = Client.initWithMiddleware({
    middleware: auth,
    baseUrl: options.baseUrl.replace(/\/v1\.0\/?$/, '/'),
    defaultVersion: 'v1.0',
    customHosts: new Set([options.hostname]),
  });
  return { client, close: () => agent.destroy() };
}
