/**
 * Client-side helpers shared by the upstream watcher and publisher: digest
 * answers that keep the nonce for later requests, backoff with
 * jitter, Retry-After / Min-Expires, and a per-trunk send queue that spreads
 * requests at a rate (token bucket driven by the timer wheel).
 */
import { DigestClient, parseChallenge, isUsable, type DigestChallenge, type DigestCredentials } from '../sip/digest.js';
import { parseExpires } from '../sip/header-values.js';
import { localFailure, type Endpoint, type SipRequest, type SipResponse } from '../sip/message.js';
import { Headers } from '../sip/headers.js';
import type { TimerHandle, TimerWheel } from '../util/timer-wheel.js';
import { systemClock, type Clock } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import type { RequestSender } from './stack-port.js';

export interface Backoff {
  minMs: number;
  maxMs: number;
}

export const DEFAULT_BACKOFF: Backoff = Object.freeze({ minMs: 2_000, maxMs: 300_000 });

/**
 * Delay before attempt `failures` (1 = first retry): exponential from minMs,
 * capped at maxMs, with "equal jitter" (half fixed, half random) so that many
 * items failing together do not come back together.
 */
export function backoffDelay(failures: number, backoff: Backoff, random: () => number): number {
  const exp = Math.min(backoff.maxMs, backoff.minMs * 2 ** Math.min(30, Math.max(0, failures - 1)));
  return Math.round(exp / 2 + random() * (exp / 2));
}

/** The long wait after a refusal that will not change soon (403, 404, 489, noresource, rejected). */
export function longDelay(backoff: Backoff, random: () => number): number {
  return Math.round(backoff.maxMs * (0.75 + random() * 0.25));
}

/** Retry-After of a response in ms (RFC 3261 §20.33), undefined when absent or bad. */
export function retryAfterMs(response: SipResponse): number | undefined {
  const value = response.headers.get('retry-after');
  if (value === undefined) return undefined;
  const m = /^\s*(\d{1,9})/.exec(value);
  return m === null ? undefined : Number(m[1]) * 1000;
}

/** Min-Expires of a 423 (RFC 3261 §20.23), undefined when absent or bad. */
export function minExpiresOf(response: SipResponse): number | undefined {
  const n = parseExpires(response.headers.get('min-expires'));
  return n === null || n === 0 ? undefined : n;
}

function algorithmRank(c: DigestChallenge): number {
  return c.algorithm.toUpperCase().startsWith('SHA-256') ? 2 : 1;
}

/** The challenge of a 401/407 these credentials can answer, SHA-256 preferred (RFC 8760 §2.4 lets us choose). */
export function pickChallenge(response: SipResponse, credentials: DigestCredentials): DigestChallenge | null {
  if (response.status !== 401 && response.status !== 407) return null;
  const proxy = response.status === 407;
  let best: DigestChallenge | null = null;
  for (const value of response.headers.getAll(proxy ? 'proxy-authenticate' : 'www-authenticate')) {
    const c = parseChallenge(value, proxy);
    if (c === null || !isUsable(c, credentials)) continue;
    if (best === null || algorithmRank(c) > algorithmRank(best)) best = c;
  }
  return best;
}

/**
 * Per-item digest state: the last challenge answered, so that later requests
 * (refreshes) carry credentials at once with the same nonce and nc+1
 * (RFC 7616 §3.4.5) instead of being challenged each time.
 */
export interface AuthHolder {
  challenge?: DigestChallenge | undefined;
}

/** Add Authorization / Proxy-Authorization for the remembered challenge, if any. */
export function applyAuth(
  headers: Headers,
  holder: AuthHolder,
  credentials: DigestCredentials | undefined,
  client: DigestClient,
  method: string,
  uri: string,
): boolean {
  const c = holder.challenge;
  if (c === undefined || credentials === undefined) return false;
  headers.append(c.proxy ? 'proxy-authorization' : 'authorization', client.authorize(c, credentials, method, uri));
  return true;
}

/** The answer to one upstream request, and whether credentials were sent in getting it. */
export interface AuthedOutcome {
  response: SipResponse;
  authTried: boolean;
}

/**
 * Send a request built by `build` and answer its digest challenge (RFC 3261
 * §22.2): once, and again only when the server says the nonce went stale; a
 * challenge after our answer is the final response. A send that throws is a
 * local 503.
 */
export async function sendWithDigest(
  sender: RequestSender,
  destination: Endpoint,
  holder: AuthHolder,
  credentials: DigestCredentials | undefined,
  build: () => SipRequest,
  onSendError: (error: unknown) => void,
): Promise<AuthedOutcome> {
  let authTried = false;
  for (let round = 0; ; round++) {
    let response: SipResponse;
    try {
      response = await sender.sendRequest(build(), { destination });
    } catch (error) {
      onSendError(error);
      response = localFailure(503, 'Service Unavailable');
    }
    if ((response.status === 401 || response.status === 407) && round < 2) {
      const challenge = credentials === undefined ? null : pickChallenge(response, credentials);
      if (challenge !== null && (!authTried || challenge.stale)) {
        holder.challenge = challenge;
        authTried = true;
        continue;
      }
    }
    return { response, authTried };
  }
}

/** When to refresh a grant of `seconds`: at ~85 %, never sooner than 1 s (ms from now). */
export function refreshDelayMs(seconds: number): number {
  return Math.max(1_000, Math.floor(seconds * 850));
}

interface Lane<T> {
  readonly key: string;
  readonly items: Set<T>;
  rate: number;
  tokens: number;
  lastRefill: number;
  timer: TimerHandle | undefined;
}

/**
 * Items waiting to send, per key (a trunk), drained at `rate` per second with
 * a burst of at most one second's worth. One wheel entry per busy key, never
 * one per item; an item is queued at most once (Set order = FIFO).
 */
export class RateQueue<T> {
  private readonly lanes = new Map<string, Lane<T>>();
  private closed = false;

  constructor(
    private readonly wheel: TimerWheel,
    private readonly clock: Pick<Clock, 'now'>,
    private readonly random: () => number,
    private readonly send: (item: T) => void,
    private readonly defaultRate = 50,
  ) {}

  /** Queue `item` under `key`; `rate` (per second) updates the key's rate when given. */
  push(key: string, item: T, rate?: number): void {
    if (this.closed) return;
    const lane = this.lane(key);
    if (rate !== undefined && rate > 0 && rate !== lane.rate) {
      lane.rate = rate;
      lane.tokens = Math.min(lane.tokens, rate);
    }
    lane.items.add(item);
    if (lane.timer === undefined || !lane.timer.active) this.drain(lane);
  }

  delete(key: string, item: T): void {
    this.lanes.get(key)?.items.delete(item);
  }

  has(key: string, item: T): boolean {
    return this.lanes.get(key)?.items.has(item) ?? false;
  }

  size(key?: string): number {
    if (key !== undefined) return this.lanes.get(key)?.items.size ?? 0;
    let n = 0;
    for (const l of this.lanes.values()) n += l.items.size;
    return n;
  }

  close(): void {
    this.closed = true;
    for (const lane of this.lanes.values()) {
      if (lane.timer !== undefined) this.wheel.cancel(lane.timer);
      lane.items.clear();
    }
  }

  private lane(key: string): Lane<T> {
    let lane = this.lanes.get(key);
    if (lane === undefined) {
      lane = { key, items: new Set(), rate: this.defaultRate, tokens: this.defaultRate, lastRefill: this.clock.now(), timer: undefined };
      this.lanes.set(key, lane);
    }
    return lane;
  }

  private readonly drainCallback = (lane: Lane<T>): void => this.drain(lane);

  private drain(lane: Lane<T>): void {
    if (this.closed) return;
    const now = this.clock.now();
    const cap = Math.max(1, lane.rate);
    lane.tokens = Math.min(cap, lane.tokens + ((now - lane.lastRefill) * lane.rate) / 1000);
    lane.lastRefill = now;
    for (const item of lane.items) {
      if (lane.tokens < 1) break;
      lane.items.delete(item);
      lane.tokens -= 1;
      this.send(item);
    }
    if (lane.items.size === 0) return;
    // Next batch when a tenth of a second's worth of tokens (at least one) is back, with ±20 % jitter.
    const batch = Math.max(1, Math.ceil(lane.rate / 10));
    const wait = ((batch - lane.tokens) * 1000) / lane.rate;
    const at = now + Math.max(1, Math.round(wait * (0.8 + this.random() * 0.4)));
    if (lane.timer === undefined) lane.timer = this.wheel.schedule(at, this.drainCallback, lane);
    else this.wheel.reschedule(lane.timer, at);
  }
}

/** `<uri>` for a From/To value, leaving a value already in name-addr form alone. */
export function nameAddr(uri: string): string {
  return uri.includes('<') ? uri : `<${uri}>`;
}

/** Options both upstream clients (watcher and publisher) take. */
export interface UpstreamClientOptions {
  sender: RequestSender;
  wheel: TimerWheel;
  logger: Logger;
  clock?: Pick<Clock, 'now'>;
  random?: () => number;
  /** An item (one person at one trunk) went up or down, with the error when down. */
  onItem?: (trunk: string, personId: string, up: boolean, error?: string) => void;
  /** A trunk accepted (or refused) our credentials. */
  onAuth?: (trunk: string, ok: boolean) => void;
  backoff?: Backoff;
  /** Bound on close()'s wait for the answers to what it sends (default 2 s). */
  closeTimeoutMs?: number;
}

/** What the shared part needs of an item. */
export interface UpstreamItem {
  readonly key: string;
  readonly target: { readonly trunk: string };
  readonly up: boolean;
}

/**
 * The part the upstream watcher and publisher share: the sender, timers,
 * digest client, per-trunk rate queue, their items and the counts over them.
 */
export abstract class UpstreamClient<I extends UpstreamItem> {
  protected readonly items = new Map<string, I>();
  protected readonly sender: RequestSender;
  protected readonly wheel: TimerWheel;
  protected readonly logger: Logger;
  protected readonly clock: Pick<Clock, 'now'>;
  protected readonly random: () => number;
  protected readonly onItem: (trunk: string, personId: string, up: boolean, error?: string) => void;
  protected readonly onAuth: (trunk: string, ok: boolean) => void;
  protected readonly backoff: Backoff;
  protected readonly closeTimeoutMs: number;
  protected readonly digest = new DigestClient();
  protected readonly queue: RateQueue<I>;

  constructor(options: UpstreamClientOptions, next: (item: I) => void) {
    this.sender = options.sender;
    this.wheel = options.wheel;
    this.logger = options.logger;
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? Math.random;
    this.onItem = options.onItem ?? (() => undefined);
    this.onAuth = options.onAuth ?? (() => undefined);
    this.backoff = options.backoff ?? DEFAULT_BACKOFF;
    this.closeTimeoutMs = options.closeTimeoutMs ?? 2_000;
    this.queue = new RateQueue<I>(this.wheel, this.clock, this.random, next);
  }

  /** Items up and down per trunk. */
  counts(): Record<string, { up: number; down: number }> {
    const out: Record<string, { up: number; down: number }> = {};
    for (const item of this.items.values()) {
      const c = (out[item.target.trunk] ??= { up: 0, down: 0 });
      if (item.up) c.up++;
      else c.down++;
    }
    return out;
  }
}
