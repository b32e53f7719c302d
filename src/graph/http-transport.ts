/**
 * HTTPS for tokens and Graph calls over node:https, so one extra CA (a
 * corporate TLS-inspecting proxy, a private Graph endpoint) can be added to
 * the system trust for both @azure/msal-node (its system.networkClient) and
 * the Graph client (its last middleware).
 */
import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import type { INetworkModule, NetworkRequestOptions, NetworkResponse } from '@azure/msal-node';

export interface TransportRequest {
  method?: string;
  headers?: Record<string, string>;
  body?: string | Uint8Array;
}

export interface HttpTransport {
  /** A fetch-like request; resolves with a WHATWG Response, rejects on network errors and timeouts. */
  request(url: string, init?: TransportRequest): Promise<Response>;
  /** The same transport as msal-node's network client. */
  readonly msalNetworkClient: INetworkModule;
  close(): void;
}

export interface HttpTransportOptions {
  /** PEM CA(s) trusted in addition to the system CAs. */
  caPem?: string;
  /** Per-request timeout (default 30 s). */
  timeoutMs?: number;
  /** Response bodies larger than this fail (default 32 MiB). */
  maxBodyBytes?: number;
}

interface Raw {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

export function createHttpTransport(options: HttpTransportOptions = {}): HttpTransport {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const maxBody = options.maxBodyBytes ?? 32 * 1024 * 1024;
  // An extra CA as one secure context made once: given as `ca`, the agent would join the whole
  // root store into its pool key at every request and build a new context for every connection.
  const httpsAgent = new https.Agent({
    keepAlive: true,
    maxSockets: 32,
    ...(options.caPem !== undefined ? { secureContext: tls.createSecureContext({ ca: [...tls.rootCertificates, options.caPem] }) } : {}),
  });
  const httpAgent = new http.Agent({ keepAlive: true, maxSockets: 32 });

  const send = (url: string, method: string, headers: Record<string, string>, body: string | Uint8Array | undefined): Promise<Raw> =>
    new Promise<Raw>((resolve, reject) => {
      let target: URL;
      try {
        target = new URL(url);
      } catch {
        reject(new Error(`invalid URL ${url}`));
        return;
      }
      const secure = target.protocol === 'https:';
      const payload = body === undefined ? undefined : typeof body === 'string' ? Buffer.from(body, 'utf8') : Buffer.from(body);
      const h: Record<string, string> = { ...headers };
      if (payload !== undefined && !Object.keys(h).some((k) => k.toLowerCase() === 'content-length')) h['content-length'] = String(payload.length);
      const req = (secure ? https : http).request(target, { method, headers: h, agent: secure ? httpsAgent : httpAgent }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > maxBody) {
            req.destroy(new Error(`response from ${target.host} larger than ${maxBody} bytes`));
            return;
          }
          chunks.push(c);
        });
        res.on('end', () => {
          const out: Record<string, string> = {};
          for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) out[k] = Array.isArray(v) ? v.join(', ') : v;
          resolve({ status: res.statusCode ?? 0, headers: out, body: Buffer.concat(chunks) });
        });
        res.on('error', reject);
      });
      req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer from ${target.host} within ${timeoutMs} ms`)));
      req.on('error', reject);
      req.end(payload);
    });

  const msalSend = async <T>(url: string, method: string, o: NetworkRequestOptions | undefined): Promise<NetworkResponse<T>> => {
    const r = await send(url, method, { ...(o?.headers ?? {}) }, method === 'POST' ? (o?.body ?? '') : undefined);
    let parsed: unknown = {};
    const text = r.body.toString('utf8');
    if (text !== '') {
      try {
        parsed = JSON.parse(text) as unknown;
      } catch {
        parsed = {};
      }
    }
    return { status: r.status, headers: r.headers, body: parsed as T };
  };

  return {
    async request(url, init = {}) {
      const method = (init.method ?? 'GET').toUpperCase();
      const r = await send(url, method, init.headers ?? {}, init.body);
      const empty = r.status === 204 || r.status === 304 || method === 'HEAD';
      const headers = new Headers();
      for (const [k, v] of Object.entries(r.headers)) headers.set(k, v);
      return new Response(empty ? null : r.body, { status: r.status, headers });
    },
    msalNetworkClient: {
      sendGetRequestAsync: <T>(url: string, o?: NetworkRequestOptions) => msalSend<T>(url, 'GET', o),
      sendPostRequestAsync: <T>(url: string, o?: NetworkRequestOptions) => msalSend<T>(url, 'POST', o),
    },
    close() {
      httpsAgent.destroy();
      httpAgent.destroy();
    },
  };
}
