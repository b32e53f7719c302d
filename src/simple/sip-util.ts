/** Small SIP helpers shared by the notifier, the publication handler and the server. */
import { isIP } from 'node:net';
import type { Endpoint, SipRequest, SipResponse, TransportProtocol } from '../sip/message.js';
import { createResponse } from '../sip/message.js';
import type { SipUri } from '../sip/uri.js';

/** Expiry bounds of one kind of soft state, in seconds (config: subscriptions / publications). */
export interface ExpiryBounds {
  minExpires: number;
  maxExpires: number;
  defaultExpires: number;
}

export type ExpiryDecision = { ok: true; seconds: number } | { ok: false; status: 400 | 423 };

/**
 * The granted duration for a requested Expires (RFC 6665 §4.2.1.1, RFC 3903 §6):
 * missing → default, non-numeric → 400, non-zero below min → 423, above max → max.
 */
export function decideExpiry(header: string | undefined, bounds: ExpiryBounds, parse: (v: string) => number | null): ExpiryDecision {
  if (header === undefined) return { ok: true, seconds: bounds.defaultExpires };
  const requested = parse(header);
  if (requested === null) return { ok: false, status: 400 };
  if (requested !== 0 && requested < bounds.minExpires) return { ok: false, status: 423 };
  return { ok: true, seconds: Math.min(requested, bounds.maxExpires) };
}

/** The answer to a refused Expires: 423 with Min-Expires (RFC 6665 §4.2.1.1, RFC 3903 §6), or 400. */
export function expiryRejection(request: SipRequest, status: 400 | 423, bounds: ExpiryBounds): SipResponse {
  return status === 423
    ? reply(request, 423, [['min-expires', String(bounds.minExpires)]])
    : reply(request, 400, undefined, { reason: 'Bad Request - invalid Expires' });
}

/** A response with extra headers appended after the copied ones. */
export function reply(
  request: SipRequest,
  status: number,
  extra?: ReadonlyArray<readonly [string, string]>,
  options?: { reason?: string; toTag?: string },
): SipResponse {
  const opts: { toTag?: string } = {};
  if (options?.toTag !== undefined) opts.toTag = options.toTag;
  const res = createResponse(request, status, options?.reason, opts);
  if (extra !== undefined) for (const [name, value] of extra) res.headers.append(name, value);
  return res;
}

/** A reason phrase safe to put on a status line (no CR/LF, bounded). */
export function safeReason(base: string, detail: string): string {
  const clean = detail.replace(/[\r\n\t]+/g, ' ').replace(/[^\x20-\x7e\u00a0-\uffff]/g, '').trim();
  const text = clean.length > 160 ? clean.slice(0, 157) + '...' : clean;
  return text.length > 0 ? `${base} - ${text}` : base;
}

function hostForUri(address: string): string {
  return address.includes(':') && !address.startsWith('[') ? `[${address}]` : address;
}

function isUnspecified(address: string): boolean {
  return address === '0.0.0.0' || address === '::' || address === '[::]';
}

/** Contact value naming us on `endpoint` (`host` overrides the bound address, e.g. for 0.0.0.0). */
export function contactValue(endpoint: Endpoint, host?: string): string {
  const h = host ?? (isUnspecified(endpoint.address) ? '127.0.0.1' : endpoint.address);
  const transport = endpoint.protocol === 'udp' ? '' : `;transport=${endpoint.protocol}`;
  return `<sip:${hostForUri(h)}:${endpoint.port}${transport}>`;
}

const PROTOCOLS: ReadonlySet<string> = new Set(['udp', 'tcp', 'tls', 'ws', 'wss']);

/** Where a request to `uri` goes: host (maybe a name needing DNS), port and transport. */
export interface NextHop {
  host: string;
  /** True when `host` is an IP literal (no DNS needed). */
  literal: boolean;
  port: number;
  protocol: TransportProtocol;
}

/**
 * Next hop for a URI without RFC 3263 SRV/NAPTR: maddr or host, the port or
 * the scheme default, the transport param or `fallback` (RFC 3261 §18.1.1).
 */
export function nextHopOf(uri: SipUri, fallback: TransportProtocol): NextHop {
  const maddr = uri.params.get('maddr');
  const rawHost = typeof maddr === 'string' && maddr.length > 0 ? maddr : uri.host;
  const host = rawHost.startsWith('[') && rawHost.endsWith(']') ? rawHost.slice(1, -1) : rawHost;
  const tp = uri.params.get('transport');
  let protocol: TransportProtocol = fallback;
  if (typeof tp === 'string' && PROTOCOLS.has(tp.toLowerCase())) protocol = tp.toLowerCase() as TransportProtocol;
  else if (uri.scheme === 'sips') protocol = 'tls';
  const port = uri.port ?? (protocol === 'tls' || protocol === 'wss' ? 5061 : 5060);
  return { host, literal: isIP(host) !== 0, port, protocol };
}
