/**
 * The one way the gateway builds a Microsoft Graph client: the library's own
 * Client.initWithMiddleware with its AuthenticationHandler (which adds the
 * bearer token only for https URLs on a Graph host or a customHosts entry)
 * and RetryHandler (429/503/504, honouring Retry-After), then the shared
 * request budget, then our HTTPS transport.
 */
import {
  AuthenticationHandler,
  Client,
  GraphError,
  RetryHandler,
  RetryHandlerOptions,
  TelemetryHandler,
  type Context,
  type Middleware,
} from '@microsoft/microsoft-graph-client';
import type { TokenSource } from './auth.js';
import { TokenError } from './auth.js';
import type { RequestBudget } from './budget.js';
import type { HttpTransport } from './http-transport.js';

/** Split ".../v1.0" into the client's baseUrl and defaultVersion. */
export function splitGraphBaseUrl(graphBaseUrl: string): { baseUrl: string; version: string; hostname: string } {
  const u = new URL(graphBaseUrl);
  const segments = u.pathname.split('/').filter((s) => s !== '');
  const version = segments.pop() ?? 'v1.0';
  const prefix = segments.length > 0 ? `/${segments.join('/')}` : '';
  return { baseUrl: `${u.origin}${prefix}/`, version, hostname: u.hostname.toLowerCase() };
}

/** Seconds or an HTTP date, as milliseconds from now; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null | undefined, now = Date.now()): number | undefined {
  if (value === null || value === undefined || value.trim() === '') return undefined;
  const n = Number(value);
  if (Number.isFinite(n)) return Math.max(0, n * 1000);
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

function headerRecord(h: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (h instanceof Headers) h.forEach((v, k) => (out[k] = v));
  else if (Array.isArray(h)) {
    for (const pair of h as unknown[]) if (Array.isArray(pair) && pair.length === 2) out[String(pair[0])] = String(pair[1]);
  } else if (h !== null && typeof h === 'object') {
    for (const [k, v] of Object.entries(h as Record<string, unknown>)) if (v !== undefined && v !== null) out[k] = String(v);
  }
  return out;
}

/**
 * Counts every attempt (retries too) against the budget; a 429 pauses the
 * whole budget. With a share (a caller's own smaller budget, taken first), a
 * 429 pauses only the share: that caller's service throttled it (Outlook's
 * limits for getSchedule are not the presence limits), presence goes on.
 */
class BudgetHandler implements Middleware {
  private next: Middleware | undefined;
  constructor(
    private readonly budget: RequestBudget,
    private readonly share?: RequestBudget,
  ) {}
  setNext(next: Middleware): void {
    this.next = next;
  }
  async execute(context: Context): Promise<void> {
    await this.share?.acquire();
    await this.budget.acquire();
    await this.next?.execute(context);
    const r = context.response;
    if (r !== undefined && r.status === 429) (this.share ?? this.budget).throttledFor(parseRetryAfter(r.headers.get('retry-after')) ?? 0);
  }
}

/** The last handler: performs the request through the gateway's transport. */
class TransportHandler implements Middleware {
  constructor(
    private readonly transport: HttpTransport,
    private readonly observe?: (status: number) => void,
  ) {}
  async execute(context: Context): Promise<void> {
    const req = context.request;
    const url = typeof req === 'string' ? req : req instanceof Request ? req.url : String(req);
    const o = context.options ?? {};
    const body = o.body;
    const init: { method: string; headers: Record<string, string>; body?: string | Uint8Array } = {
      method: (o.method ?? 'GET').toUpperCase(),
      headers: headerRecord(o.headers),
    };
    if (typeof body === 'string' || body instanceof Uint8Array) init.body = body;
    else if (body !== undefined && body !== null) init.body = String(body);
    if (this.observe === undefined) {
      context.response = await this.transport.request(url, init);
      return;
    }
    let response: Response;
    try {
      response = await this.transport.request(url, init);
    } catch (error) {
      this.observe(0);
      throw error;
    }
    this.observe(response.status);
    context.response = response;
  }
}

export interface GraphClientOptions {
  graphBaseUrl: string;
  tokens: TokenSource;
  budget: RequestBudget;
  /** A caller's own share, taken before `budget`; its 429s pause only the share. */
  share?: RequestBudget;
  transport: HttpTransport;
  /** RetryHandler: first delay without Retry-After (s) and attempts after the first (default 3 s, 3). */
  retry?: { delaySec?: number; maxRetries?: number };
  /** Told the status of every request attempt (0: no answer). */
  observe?: (status: number) => void;
}

/**
 * The longest Retry-After the RetryHandler sleeps inside one request. A
 * longer one is not slept there: the BudgetHandler has paused the budget (or
 * the caller's share) for it, so no request starts before it has passed, and
 * the caller gets the 429 and tries again on its own schedule. The library's
 * sleep cannot be cut short, so a stop would otherwise wait out a long
 * Retry-After; a budget that is draining (the Graph side stopping) retries
 * nothing.
 */
export const MAX_INLINE_RETRY_AFTER_MS = 10_000;

function retryInline(budget: RequestBudget, response: Response): boolean {
  if (budget.draining) return false;
  const ra = parseRetryAfter(response.headers.get('retry-after'));
  return ra === undefined || ra <= MAX_INLINE_RETRY_AFTER_MS;
}

export function createGraphClient(options: GraphClientOptions): Client {
  const { baseUrl, version, hostname } = splitGraphBaseUrl(options.graphBaseUrl);
  const auth = new AuthenticationHandler({ getAccessToken: () => options.tokens.getToken() });
  const retry = new RetryHandler(
    new RetryHandlerOptions(options.retry?.delaySec ?? 3, options.retry?.maxRetries ?? 3, (_delay, _attempt, _request, _options, response) =>
      retryInline(options.budget, response),
    ),
  );
  const budget = new BudgetHandler(options.budget, options.share);
  const telemetry = new TelemetryHandler();
  const transport = new TransportHandler(options.transport, options.observe);
  auth.setNext(retry);
  retry.setNext(budget);
  budget.setNext(telemetry);
  telemetry.setNext(transport);
  return Client.initWithMiddleware({ middleware: auth, baseUrl, defaultVersion: version, customHosts: new Set([hostname]) });
}

/** What went wrong with a Graph call, narrowed from whatever was thrown. */
export interface GraphFailure {
  /** HTTP status; 0 when no answer came (network, timeout) or no token could be had */
  status: number;
  code: string;
  message: string;
  retryAfterMs?: number;
}

export function graphFailure(error: unknown): GraphFailure {
  if (error instanceof TokenError) return { status: 0, code: `token:${error.code}`, message: error.message };
  if (error instanceof GraphError) {
    const status = error.statusCode > 0 ? error.statusCode : 0;
    const f: GraphFailure = { status, code: error.code ?? (status === 0 ? 'network' : 'error'), message: error.message };
    const ra = parseRetryAfter(error.headers?.get('retry-after'));
    if (ra !== undefined) f.retryAfterMs = ra;
    return f;
  }
  if (error instanceof Error) return { status: 0, code: error.name || 'error', message: error.message };
  return { status: 0, code: 'error', message: String(error) };
}

/** Worth retrying later: throttled, unavailable, no answer, or no token. */
export function isTransient(f: GraphFailure): boolean {
  return f.status === 0 || f.status === 401 || f.status === 408 || f.status === 429 || f.status >= 500;
}

export { isRecord } from './json.js';
