import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';

export interface WebhookResponse {
  /** 0 when no response came (network error or timeout) */
  status: number;
  contentType: string;
  body: string;
  /** real milliseconds until the response ended */
  elapsedMs: number;
  timedOut: boolean;
  error?: string;
}

export interface WebhookClientOptions {
  /** extra CA certificates (PEM) trusted for https notification URLs */
  ca?: string[];
}

const MAX_BODY = 64 * 1024;

/** POSTs to subscriber endpoints (validation and notifications) with a hard timeout. */
export class WebhookClient {
  private readonly httpAgent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  private readonly httpsAgent: https.Agent;

  constructor(options: WebhookClientOptions = {}) {
    this.httpsAgent = new https.Agent({
      keepAlive: true,
      maxSockets: 64,
      ...(options.ca && options.ca.length > 0 ? { ca: [...defaultCas(), ...options.ca] } : {}),
    });
  }

  post(url: string, body: string, contentType: string, timeoutMs: number, headers: Record<string, string> = {}): Promise<WebhookResponse> {
    const started = performance.now();
    return new Promise<WebhookResponse>((resolve) => {
      let settled = false;
      const done = (r: Omit<WebhookResponse, 'elapsedMs'>): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve({ ...r, elapsedMs: performance.now() - started });
      };
      let target: URL;
      try {
        target = new URL(url);
      } catch {
        done({ status: 0, contentType: '', body: '', timedOut: false, error: 'invalid URL' });
        return;
      }
      const isHttps = target.protocol === 'https:';
      const payload = Buffer.from(body, 'utf8');
      const req = (isHttps ? https : http).request(target, {
        method: 'POST',
        agent: isHttps ? this.httpsAgent : this.httpAgent,
        headers: { 'content-type': contentType, 'content-length': String(payload.length), ...headers },
      });
      const timer = setTimeout(() => {
        done({ status: 0, contentType: '', body: '', timedOut: true, error: 'timeout' });
        req.destroy();
      }, timeoutMs);
      req.on('error', (error) => done({ status: 0, contentType: '', body: '', timedOut: false, error: error.message }));
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size <= MAX_BODY) chunks.push(chunk);
        });
        res.on('error', (error) => done({ status: 0, contentType: '', body: '', timedOut: false, error: error.message }));
        res.on('end', () =>
          done({
            status: res.statusCode ?? 0,
            contentType: String(res.headers['content-type'] ?? ''),
            body: Buffer.concat(chunks).toString('utf8'),
            timedOut: false,
          }),
        );
      });
      req.end(payload);
    });
  }

  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }
}

function defaultCas(): string[] {
  // keep the public roots when adding CAs
  return [...tls.rootCertificates];
}
