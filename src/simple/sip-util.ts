/** Small SIP helpers shared by the notifier, the publication handler and the server. */
import type { SipRequest, SipResponse } from '../sip/message.js';
import { createResponse } from '../sip/message.js';

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
