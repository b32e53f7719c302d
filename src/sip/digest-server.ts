/**
 * Server side of HTTP Digest for SIP (RFC 7616 with RFC 8760's SHA-256 for
 * SIP; qop=auth; RFC 2617 no-qop answers accepted). Nonces are stateless:
 * a timestamp and random bits sealed with an HMAC under a per-process secret,
 * so any nonce we issued verifies without a table; only the last nonce count
 * of recently used nonces is remembered, to refuse replays.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { isTokenChar, scanQuoted, skipLws } from './header-values.js';
import { createResponse, type SipRequest, type SipResponse } from './message.js';
import { parseUri, uriEquals } from './uri.js';
import { systemClock, type Clock } from '../util/clock.js';

export interface DigestServerOptions {
  realm: string;
  /** HMAC key of the nonces; default 32 random bytes (nonces die with the process) */
  secret?: Buffer;
  /** how long a nonce is good for; default 5 minutes (then stale=true) */
  nonceTtlMs?: number;
  clock?: Pick<Clock, 'now'>;
  /** nonces whose last nonce count is remembered (replay check); default 20,000 */
  maxTrackedNonces?: number;
}

export type DigestVerdict =
  | { ok: true; username: string }
  | {
      ok: false;
      /** the credentials were right but the nonce too old (or its count reused): challenge with stale=true */
      stale: boolean;
      /** the header is broken or does not fit the request: answer 400, do not challenge */
      malformed: boolean;
      /** for logs; never contains a secret */
      reason: string;
      username?: string;
    };

type HashName = 'md5' | 'sha256';

/** Offered in this order: RFC 8760 §2.4, most preferred first. */
const OFFERED: ReadonlyArray<{ name: string; hash: HashName }> = [
  { name: 'SHA-256', hash: 'sha256' },
  { name: 'MD5', hash: 'md5' },
];

const TS_BYTES = 6;
const RAND_BYTES = 8;
const MAC_BYTES = 16;
const NONCE_BYTES = TS_BYTES + RAND_BYTES + MAC_BYTES;
const HEX_NC = /^[0-9a-fA-F]{8}$/;

/**
 * `name=value, name="quoted"` auth-params after the scheme, names lower-case.
 * Null on malformed input.
 */
export function parseAuthParams(s: string, start: number): Map<string, string> | null {
  const params = new Map<string, string>();
  let i = start;
  for (;;) {
    i = skipLws(s, i);
    while (i < s.length && s.charCodeAt(i) === 0x2c) i = skipLws(s, i + 1);
    if (i >= s.length) return params;
    const nameStart = i;
    while (i < s.length && isTokenChar(s.charCodeAt(i))) i++;
    if (i === nameStart) return null;
    const name = s.slice(nameStart, i).toLowerCase();
    i = skipLws(s, i);
    if (s.charCodeAt(i) !== 0x3d /* = */) return null;
    i = skipLws(s, i + 1);
    let value: string;
    if (s.charCodeAt(i) === 0x22) {
      const q = scanQuoted(s, i);
      if (q === null) return null;
      value = q.text;
      i = q.end;
    } else {
      const vStart = i;
      while (i < s.length && isTokenChar(s.charCodeAt(i))) i++;
      if (i === vStart) return null;
      value = s.slice(vStart, i);
    }
    // a repeated parameter is ambiguous: refuse rather than guess
    if (params.has(name)) return null;
    params.set(name, value);
    i = skipLws(s, i);
    if (i < s.length && s.charCodeAt(i) !== 0x2c) return null;
  }
}

/** The Digest parameters of one Authorization value; null when not Digest, 'malformed' when broken. */
function parseDigestCredentials(value: string): Map<string, string> | null | 'malformed' {
  const s = value.trim();
  const sp = s.search(/[ \t]/);
  const scheme = (sp < 0 ? s : s.slice(0, sp)).toLowerCase();
  if (scheme !== 'digest') return null;
  if (sp < 0) return 'malformed';
  return parseAuthParams(s, sp) ?? 'malformed';
}

function hashHex(hash: HashName, text: string): string {
  return createHash(hash).update(text, 'utf8').digest('hex');
}

function quote(v: string): string {
  return `"${v.replace(/(["\\])/g, '\\$1')}"`;
}

function sameUri(a: string, b: string): boolean {
  if (a === b) return true;
  const pa = parseUri(a);
  const pb = parseUri(b);
  return pa !== null && pb !== null && uriEquals(pa, pb);
}

export class DigestServer {
  readonly realm: string;
  private readonly secret: Buffer;
  private readonly ttl: number;
  private readonly clock: Pick<Clock, 'now'>;
  private readonly maxTracked: number;
  /** nonce → highest nonce count accepted */
  private readonly lastNc = new Map<string, number>();

  constructor(options: DigestServerOptions) {
    this.realm = options.realm;
    this.secret = options.secret ?? randomBytes(32);
    this.ttl = options.nonceTtlMs ?? 5 * 60 * 1000;
    this.clock = options.clock ?? systemClock;
    this.maxTracked = Math.max(1, options.maxTrackedNonces ?? 20_000);
  }

  /** A fresh nonce: timestamp, random bits and their HMAC, base64url. */
  nonce(): string {
    const buf = Buffer.allocUnsafe(NONCE_BYTES);
    buf.writeUIntBE(Math.max(0, Math.floor(this.clock.now())) % 2 ** 48, 0, TS_BYTES);
    randomBytes(RAND_BYTES).copy(buf, TS_BYTES);
    this.mac(buf).copy(buf, TS_BYTES + RAND_BYTES, 0, MAC_BYTES);
    return buf.toString('base64url');
  }

  /**
   * 401 with WWW-Authenticate (or 407 with Proxy-Authenticate when `proxy`):
   * one SHA-256 and one MD5 challenge, qop=auth, stale=true when asked.
   */
  challenge(request: SipRequest, proxy: boolean, stale = false): SipResponse {
    const response = createResponse(request, proxy ? 407 : 401);
    const header = proxy ? 'proxy-authenticate' : 'www-authenticate';
    const nonce = this.nonce();
    for (const alg of OFFERED) {
      response.headers.append(
        header,
        `Digest realm=${quote(this.realm)}, nonce="${nonce}", algorithm=${alg.name}, qop="auth"${stale ? ', stale=true' : ''}`,
      );
    }
    return response;
  }

  /**
   * Check the request's Authorization (Proxy-Authorization when `proxy`)
   * for our realm. Undefined when it carries none for our realm.
   */
  verify(
    request: SipRequest,
    proxy: boolean,
    passwordOf: (username: string) => string | undefined,
  ): DigestVerdict | undefined {
    const values = request.headers.getAll(proxy ? 'proxy-authorization' : 'authorization');
    if (values.length === 0) return undefined;
    let params: Map<string, string> | undefined;
    let malformed = false;
    for (const v of values) {
      const p = parseDigestCredentials(v);
      if (p === 'malformed') malformed = true;
      else if (p !== null && p.get('realm') === this.realm) {
        params = p;
        break;
      }
    }
    if (params === undefined) {
      return malformed ? this.refuse('malformed Authorization header', false, true) : undefined;
    }
    return this.check(request, params, passwordOf);
  }

  private check(
    request: SipRequest,
    p: Map<string, string>,
    passwordOf: (username: string) => string | undefined,
  ): DigestVerdict {
    const username = p.get('username');
    const nonce = p.get('nonce');
    const uri = p.get('uri');
    const given = p.get('response');
    if (username === undefined || nonce === undefined || uri === undefined || given === undefined) {
      return this.refuse('Authorization lacks username, nonce, uri or response', false, true);
    }
    // RFC 7616 §3.4.6: the digest uri must name the same resource as the Request-URI
    if (!sameUri(uri, request.uri)) return this.refuse('digest uri does not match the Request-URI', false, true, username);

    const algName = (p.get('algorithm') ?? 'MD5').toUpperCase();
    const alg = OFFERED.find((a) => a.name === algName);
    if (alg === undefined) return this.refuse(`algorithm ${algName} was not offered`, false, false, username);

    const qop = p.get('qop');
    let nc: string | undefined;
    let cnonce: string | undefined;
    if (qop !== undefined) {
      if (qop.toLowerCase() !== 'auth') return this.refuse(`qop ${qop} was not offered`, false, true, username);
      nc = p.get('nc');
      cnonce = p.get('cnonce');
      if (nc === undefined || !HEX_NC.test(nc) || cnonce === undefined || cnonce.length === 0) {
        return this.refuse('qop=auth without a valid nc and cnonce', false, true, username);
      }
    }

    const issuedAt = this.nonceTime(nonce);
    if (issuedAt === undefined) return this.refuse('nonce was not issued here', false, false, username);

    const password = passwordOf(username);
    // RFC 7616 §3.4.1 (with qop) and RFC 2617 §3.2.2.1 (without)
    const ha1 = hashHex(alg.hash, `${username}:${this.realm}:${password ?? ''}`);
    const ha2 = hashHex(alg.hash, `${request.method}:${uri}`);
    const expected =
      qop === undefined
        ? hashHex(alg.hash, `${ha1}:${nonce}:${ha2}`)
        : hashHex(alg.hash, `${ha1}:${nonce}:${nc ?? ''}:${cnonce ?? ''}:auth:${ha2}`);
    const a = Buffer.from(expected, 'latin1');
    const b = Buffer.from(given.toLowerCase(), 'latin1');
    const match = a.length === b.length && timingSafeEqual(a, b);
    if (password === undefined || !match) return this.refuse('wrong user name or password', false, false, username);

    // RFC 7616 §3.3: stale only when the digest itself was right
    if (this.clock.now() - issuedAt > this.ttl) return this.refuse('nonce expired', true, false, username);

    if (nc !== undefined) {
      const count = parseInt(nc, 16);
      const last = this.lastNc.get(nonce);
      if (last !== undefined && count <= last) return this.refuse('nonce count reused (replay)', true, false, username);
      this.remember(nonce, count);
    }
    return { ok: true, username };
  }

  private refuse(reason: string, stale: boolean, malformed: boolean, username?: string): DigestVerdict {
    return username === undefined ? { ok: false, stale, malformed, reason } : { ok: false, stale, malformed, reason, username };
  }

  private remember(nonce: string, count: number): void {
    if (!this.lastNc.has(nonce) && this.lastNc.size >= this.maxTracked) {
      const oldest = this.lastNc.keys().next();
      if (oldest.done !== true) this.lastNc.delete(oldest.value);
    }
    this.lastNc.set(nonce, count);
  }

  private mac(buf: Buffer): Buffer {
    return createHmac('sha256', this.secret)
      .update(buf.subarray(0, TS_BYTES + RAND_BYTES))
      .update(this.realm, 'utf8')
      .digest();
  }

  /** Issue time of a nonce of ours, undefined when forged, foreign or mangled. */
  private nonceTime(nonce: string): number | undefined {
    if (nonce.length !== Math.ceil((NONCE_BYTES * 4) / 3) || !/^[A-Za-z0-9_-]+$/.test(nonce)) return undefined;
    const buf = Buffer.from(nonce, 'base64url');
    if (buf.length !== NONCE_BYTES) return undefined;
    const mac = this.mac(buf).subarray(0, MAC_BYTES);
    if (!timingSafeEqual(mac, buf.subarray(TS_BYTES + RAND_BYTES))) return undefined;
    return buf.readUIntBE(0, TS_BYTES);
  }
}
