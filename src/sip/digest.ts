import { createHash } from 'node:crypto';
import type { SipRequest, SipResponse } from './message.js';
import { parseCSeq } from './header-values.js';
import { newCnonce } from './ids.js';

/**
 * Client side of HTTP Digest as used by SIP: RFC 7616 (MD5, SHA-256 and their
 * -sess variants, qop=auth), RFC 8760 for SIP, and RFC 2617 compatibility
 * when the challenge has no qop.
 */

export interface DigestChallenge {
  scheme: 'Digest';
  realm: string;
  nonce: string;
  /** MD5, MD5-sess, SHA-256, SHA-256-sess (canonical spelling) */
  algorithm: string;
  qop?: string[];
  opaque?: string;
  stale: boolean;
  /** from Proxy-Authenticate (answer with Proxy-Authorization) */
  proxy: boolean;
}

export interface DigestCredentials {
  username: string;
  password: string;
  /** only answer challenges of this realm */
  realm?: string;
}

const ALGORITHMS: Readonly<Record<string, { canonical: string; hash: 'md5' | 'sha256'; sess: boolean }>> = {
  md5: { canonical: 'MD5', hash: 'md5', sess: false },
  'md5-sess': { canonical: 'MD5-sess', hash: 'md5', sess: true },
  'sha-256': { canonical: 'SHA-256', hash: 'sha256', sess: false },
  'sha-256-sess': { canonical: 'SHA-256-sess', hash: 'sha256', sess: true },
};

function isTokenChar(c: number): boolean {
  // RFC 7230 tchar, enough for auth-param names and token values
  return (
    (c >= 0x30 && c <= 0x39) ||
    (c >= 0x41 && c <= 0x5a) ||
    (c >= 0x61 && c <= 0x7a) ||
    c === 0x21 || (c >= 0x23 && c <= 0x27) || c === 0x2a || c === 0x2b || c === 0x2d || c === 0x2e ||
    c === 0x5e || c === 0x5f || c === 0x60 || c === 0x7c || c === 0x7e
  );
}

function skipSpace(s: string, i: number): number {
  while (i < s.length && (s[i] === ' ' || s[i] === '\t' || s[i] === '\r' || s[i] === '\n')) i++;
  return i;
}

/**
 * `name=value, name="quoted"` pairs after the scheme. Returns null on
 * malformed input (unterminated quote, missing `=`).
 */
function parseAuthParams(s: string, start: number): Map<string, string> | null {
  const params = new Map<string, string>();
  let i = start;
  for (;;) {
    i = skipSpace(s, i);
    while (i < s.length && s[i] === ',') i = skipSpace(s, i + 1);
    if (i >= s.length) return params;
    const nameStart = i;
    while (i < s.length && isTokenChar(s.charCodeAt(i))) i++;
    if (i === nameStart) return null;
    const name = s.slice(nameStart, i).toLowerCase();
    i = skipSpace(s, i);
    if (s[i] !== '=') return null;
    i = skipSpace(s, i + 1);
    let value: string;
    if (s[i] === '"') {
      let out = '';
      i++;
      let closed = false;
      while (i < s.length) {
        const ch = s[i]!;
        if (ch === '\\' && i + 1 < s.length) {
          out += s[i + 1];
          i += 2;
        } else if (ch === '"') {
          closed = true;
          i++;
          break;
        } else {
          out += ch;
          i++;
        }
      }
      if (!closed) return null;
      value = out;
    } else {
      const vStart = i;
      while (i < s.length && isTokenChar(s.charCodeAt(i))) i++;
      value = s.slice(vStart, i);
    }
    if (!params.has(name)) params.set(name, value);
    i = skipSpace(s, i);
    if (i < s.length && s[i] !== ',') return null;
  }
}

/**
 * Parse one WWW-Authenticate / Proxy-Authenticate value. Null when it is not a
 * Digest challenge, lacks realm or nonce, or names an algorithm we do not know.
 */
export function parseChallenge(headerValue: string, proxy: boolean): DigestChallenge | null {
  const s = headerValue.trim();
  const sp = s.search(/[ \t]/);
  if (sp < 0 || s.slice(0, sp).toLowerCase() !== 'digest') return null;
  const params = parseAuthParams(s, sp);
  if (params === null) return null;
  const realm = params.get('realm');
  const nonce = params.get('nonce');
  if (realm === undefined || nonce === undefined || nonce.length === 0) return null;
  // RFC 7616 §3.3: an absent algorithm means MD5
  const alg = ALGORITHMS[(params.get('algorithm') ?? 'MD5').toLowerCase()];
  if (alg === undefined) return null;
  const challenge: DigestChallenge = {
    scheme: 'Digest',
    realm,
    nonce,
    algorithm: alg.canonical,
    stale: (params.get('stale') ?? '').toLowerCase() === 'true',
    proxy,
  };
  const qop = params.get('qop');
  if (qop !== undefined) {
    challenge.qop = qop
      .split(',')
      .map((q) => q.trim().toLowerCase())
      .filter((q) => q.length > 0);
  }
  const opaque = params.get('opaque');
  if (opaque !== undefined) challenge.opaque = opaque;
  return challenge;
}

function h(hash: 'md5' | 'sha256', text: string): string {
  return createHash(hash).update(text, 'utf8').digest('hex');
}

function quote(value: string): string {
  return `"${value.replace(/(["\\])/g, '\\$1')}"`;
}

/** Whether this client can answer the challenge with these credentials. */
export function isUsable(challenge: DigestChallenge, credentials: DigestCredentials): boolean {
  if (ALGORITHMS[challenge.algorithm.toLowerCase()] === undefined) return false;
  if (credentials.realm !== undefined && credentials.realm !== challenge.realm) return false;
  // only qop=auth is supported (auth-int would need the body hash)
  if (challenge.qop !== undefined && !challenge.qop.includes('auth')) return false;
  return true;
}

const MAX_TRACKED_NONCES = 1024;

/** Builds Authorization values and keeps the nonce count of each nonce. */
export class DigestClient {
  private readonly nonceCounts = new Map<string, number>();

  /**
   * The Authorization / Proxy-Authorization header value answering the
   * challenge. Throws only on an unsupported algorithm (check isUsable first).
   */
  authorize(
    challenge: DigestChallenge,
    credentials: DigestCredentials,
    method: string,
    uri: string,
    cnonce?: string,
  ): string {
    const alg = ALGORITHMS[challenge.algorithm.toLowerCase()];
    if (alg === undefined) throw new Error(`unsupported digest algorithm ${challenge.algorithm}`);
    const useQop = challenge.qop !== undefined && challenge.qop.includes('auth');
    const needCnonce = useQop || alg.sess;
    const cn = needCnonce ? (cnonce ?? newCnonce()) : undefined;

    // RFC 7616 §3.4.2: A1, with the -sess variant hashing in nonce and cnonce
    let ha1 = h(alg.hash, `${credentials.username}:${challenge.realm}:${credentials.password}`);
    if (alg.sess) ha1 = h(alg.hash, `${ha1}:${challenge.nonce}:${cn ?? ''}`);
    // RFC 7616 §3.4.3: A2 for qop=auth (and no qop)
    const ha2 = h(alg.hash, `${method}:${uri}`);

    let response: string;
    let nc: string | undefined;
    if (useQop) {
      nc = this.nextNonceCount(challenge.nonce).toString(16).padStart(8, '0');
      // RFC 7616 §3.4.1
      response = h(alg.hash, `${ha1}:${challenge.nonce}:${nc}:${cn ?? ''}:auth:${ha2}`);
    } else {
      // RFC 2617 §3.2.2.1 compatibility: no qop
      response = h(alg.hash, `${ha1}:${challenge.nonce}:${ha2}`);
    }

    const parts = [
      `Digest username=${quote(credentials.username)}`,
      `realm=${quote(challenge.realm)}`,
      `nonce=${quote(challenge.nonce)}`,
      `uri=${quote(uri)}`,
      `response=${quote(response)}`,
      `algorithm=${alg.canonical}`,
    ];
    if (cn !== undefined) parts.push(`cnonce=${quote(cn)}`);
    if (challenge.opaque !== undefined) parts.push(`opaque=${quote(challenge.opaque)}`);
    if (useQop && nc !== undefined) parts.push('qop=auth', `nc=${nc}`);
    return parts.join(', ');
  }

  private nextNonceCount(nonce: string): number {
    const n = (this.nonceCounts.get(nonce) ?? 0) + 1;
    if (n === 1 && this.nonceCounts.size >= MAX_TRACKED_NONCES) {
      const oldest = this.nonceCounts.keys().next();
      if (oldest.done !== true) this.nonceCounts.delete(oldest.value);
    }
    this.nonceCounts.set(nonce, n);
    return n;
  }
}

function authRealm(value: string): string | undefined {
  const s = value.trim();
  const sp = s.search(/[ \t]/);
  if (sp < 0) return undefined;
  return parseAuthParams(s, sp)?.get('realm');
}

function algorithmRank(challenge: DigestChallenge): number {
  return challenge.algorithm.toUpperCase().startsWith('SHA-256') ? 2 : 1;
}

/**
 * The request to send again after a 401 or 407: a copy with Authorization
 * (401) or Proxy-Authorization (407), CSeq + 1 and no Via (the transaction
 * layer adds a fresh one). SHA-256 is preferred over MD5 when both are
 * offered (a local policy, which RFC 8760 §2.4 allows). Null when no
 * challenge can be answered.
 */
export function answerChallenge(
  request: SipRequest,
  response: SipResponse,
  credentials: DigestCredentials,
  client: DigestClient,
): SipRequest | null {
  if (response.status !== 401 && response.status !== 407) return null;
  const proxy = response.status === 407;
  const challengeHeader = proxy ? 'proxy-authenticate' : 'www-authenticate';
  const answerHeader = proxy ? 'proxy-authorization' : 'authorization';

  let best: DigestChallenge | null = null;
  for (const value of response.headers.getAll(challengeHeader)) {
    const c = parseChallenge(value, proxy);
    if (c === null || !isUsable(c, credentials)) continue;
    if (best === null || algorithmRank(c) > algorithmRank(best)) best = c;
  }
  if (best === null) return null;

  const cseqValue = request.headers.get('cseq');
  const cseq = cseqValue === undefined ? null : parseCSeq(cseqValue);
  if (cseq === null) return null;

  const headers = request.headers.clone();
  headers.delete('via');
  headers.set('cseq', `${cseq.seq + 1} ${cseq.method}`);
  // an earlier answer for the same realm is replaced; answers for other realms stay
  const kept = headers.getAll(answerHeader).filter((v) => authRealm(v) !== best.realm);
  headers.delete(answerHeader);
  for (const v of kept) headers.append(answerHeader, v);
  headers.append(answerHeader, client.authorize(best, credentials, request.method, request.uri));
  return { kind: 'request', method: request.method, uri: request.uri, headers, body: request.body };
}
