/**
 * SIP/SIPS URIs (RFC 3261 §19.1), tel URIs (RFC 3966, as number + params),
 * other schemes kept opaque; name-addr / addr-spec header values (§20.10).
 */
import {
  formatParams,
  isLws,
  isTokenChar,
  NO_PARAMS,
  parseBoundedInt,
  parseParamsFrom,
  quoteString,
  scanQuoted,
  skipLws,
} from './header-values.js';

export interface SipUri {
  /** lower-case: sip | sips | tel | other */
  scheme: string;
  /** unescaped (for tel: the number) */
  user?: string;
  password?: string;
  /** lower-case; IPv6 kept with brackets, e.g. "[2001:db8::1]"; "" for tel and opaque URIs */
  host: string;
  port?: number;
  /** keys lower-case, value null for flag params like ;lr; values as written (read-only: parsed URIs share NO_PARAMS) */
  params: ReadonlyMap<string, string | null>;
  /** URI header fields (?a=b&c=d), names and values as written (escaped); read-only like params */
  headers: ReadonlyMap<string, string>;
  /** everything after "scheme:" for schemes other than sip, sips, pres, im and tel */
  opaque?: string;
}

// ---------------------------------------------------------------------------
// Character classes (RFC 3261 §25.1)

function table(chars: string): Uint8Array {
  const t = new Uint8Array(128);
  for (let c = 0x30; c <= 0x39; c++) t[c] = 1;
  for (let c = 0x41; c <= 0x5a; c++) t[c] = 1;
  for (let c = 0x61; c <= 0x7a; c++) t[c] = 1;
  for (let i = 0; i < chars.length; i++) t[chars.charCodeAt(i)] = 1;
  return t;
}

const MARK = "-_.!~*'()";
/** user = 1*( unreserved / escaped / user-unreserved ) */
const USER_CHARS = table(MARK + '&=+$,;?/');
/** password = *( unreserved / escaped / "&" / "=" / "+" / "$" / "," ) */
const PASSWORD_CHARS = table(MARK + '&=+$,');
/** paramchar = param-unreserved / unreserved / escaped */
const PARAM_CHARS = table(MARK + '[]/:&+$');
/** hname / hvalue = hnv-unreserved / unreserved / escaped */
const HEADER_CHARS = table(MARK + '[]/?:+$');
const HOST_CHARS = table('-._');
/** characters allowed in opaque URIs of other schemes (no LWS, quotes or angle brackets) */
function isOpaqueChar(c: number): boolean {
  return c > 0x20 && c !== 0x7f && c !== 0x22 && c !== 0x3c && c !== 0x3e;
}

function isHex(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}

/** Every char is in the table or a valid %XX escape (non-ASCII only when `utf8` is set). */
function validChars(s: string, start: number, end: number, t: Uint8Array, utf8 = false): boolean {
  for (let i = start; i < end; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x25 /* % */) {
      if (i + 2 >= end || !isHex(s.charCodeAt(i + 1)) || !isHex(s.charCodeAt(i + 2))) return false;
      i += 2;
    } else if (c >= 128 ? !utf8 : t[c] !== 1) return false;
  }
  return true;
}

function unescape(s: string): string {
  if (s.indexOf('%') < 0) return s;
  try {
    return decodeURIComponent(s);
  } catch {
    // not UTF-8 once unescaped: keep each escaped octet as one code unit
    return s.replace(/%([0-9a-fA-F]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16)));
  }
}

/**
 * Escape what the table does not allow; non-ASCII as UTF-8 octets. With
 * `raw`, the text is already in escaped form (params, headers) and valid
 * %XX sequences pass through.
 */
function escapeWith(s: string, t: Uint8Array, raw = false): string {
  let plain = true;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 128 || t[c] !== 1) {
      plain = false;
      break;
    }
  }
  if (plain) return s;
  let out = '';
  let i = 0;
  for (const ch of s) {
    const c = ch.charCodeAt(0);
    const at = i;
    i += ch.length;
    if (c < 128) {
      const keep = t[c] === 1 || (raw && c === 0x25 && isHex(s.charCodeAt(at + 1)) && isHex(s.charCodeAt(at + 2)));
      out += keep ? ch : '%' + (c < 16 ? '0' : '') + c.toString(16).toUpperCase();
    } else {
      try {
        out += encodeURIComponent(ch);
      } catch {
        out += '%EF%BF%BD'; // lone surrogate
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------
// Parsing

function validHost(s: string, start: number, end: number): boolean {
  if (end <= start) return false;
  if (s.charCodeAt(start) === 0x5b) {
    if (s.charCodeAt(end - 1) !== 0x5d || end - start < 4) return false;
    for (let i = start + 1; i < end - 1; i++) {
      const c = s.charCodeAt(i);
      if (!(isHex(c) || c === 0x3a || c === 0x2e)) return false;
    }
    return true;
  }
  for (let i = start; i < end; i++) {
    const c = s.charCodeAt(i);
    if (c >= 128 || HOST_CHARS[c] !== 1) return false;
  }
  return true;
}

/** The URI header fields of every URI without any (shared, like NO_PARAMS). */
const NO_HEADERS: ReadonlyMap<string, string> = new Map();

function parseUriParams(s: string, start: number, end: number): Map<string, string | null> | null {
  const params = new Map<string, string | null>();
  let i = start;
  while (i < end) {
    // s[i] === ';'
    let next = s.indexOf(';', i + 1);
    if (next < 0 || next > end) next = end;
    const eq = s.indexOf('=', i + 1);
    const hasValue = eq >= 0 && eq < next;
    const nameEnd = hasValue ? eq : next;
    if (nameEnd === i + 1) return null;
    if (!validChars(s, i + 1, nameEnd, PARAM_CHARS)) return null;
    let value: string | null = null;
    if (hasValue) {
      if (eq + 1 === next || !validChars(s, eq + 1, next, PARAM_CHARS)) return null;
      value = s.slice(eq + 1, next);
    }
    params.set(s.slice(i + 1, nameEnd).toLowerCase(), value);
    i = next;
  }
  return params;
}

function parseUriHeaders(s: string, start: number): Map<string, string> | null {
  const headers = new Map<string, string>();
  for (const part of s.slice(start).split('&')) {
    const eq = part.indexOf('=');
    if (eq <= 0) return null;
    if (!validChars(part, 0, eq, HEADER_CHARS) || !validChars(part, eq + 1, part.length, HEADER_CHARS)) return null;
    headers.set(part.slice(0, eq), part.slice(eq + 1));
  }
  return headers;
}

/** sip:, sips:, pres:, im: — `[userinfo@]host[:port][;params][?headers]` */
function parseSipLike(text: string, scheme: string, from: number): SipUri | null {
  const n = text.length;
  // The user part may hold ';', '?', ':' and '/', but never a raw '@' (nor may anything after it).
  const at = text.indexOf('@', from);
  let hostStart = from;
  let user: string | undefined;
  let password: string | undefined;
  if (at >= 0) {
    const colon = text.indexOf(':', from);
    const userEnd = colon >= 0 && colon < at ? colon : at;
    if (userEnd === from) return null;
    // raw UTF-8 in user parts is tolerated (seen from phones); formatUri escapes it
    if (!validChars(text, from, userEnd, USER_CHARS, true)) return null;
    user = unescape(text.slice(from, userEnd));
    if (userEnd < at) {
      if (!validChars(text, userEnd + 1, at, PASSWORD_CHARS, true)) return null;
      password = unescape(text.slice(userEnd + 1, at));
    }
    hostStart = at + 1;
  }
  let i = hostStart;
  if (text.charCodeAt(i) === 0x5b) {
    const close = text.indexOf(']', i);
    if (close < 0) return null;
    i = close + 1;
  } else {
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c === 0x3a || c === 0x3b || c === 0x3f) break;
      i++;
    }
  }
  if (!validHost(text, hostStart, i)) return null;
  const uri: SipUri = {
    scheme,
    host: text.slice(hostStart, i).toLowerCase(),
    params: NO_PARAMS,
    headers: NO_HEADERS,
  };
  if (user !== undefined) uri.user = user;
  if (password !== undefined) uri.password = password;
  if (i < n && text.charCodeAt(i) === 0x3a) {
    let j = i + 1;
    while (j < n && text.charCodeAt(j) >= 0x30 && text.charCodeAt(j) <= 0x39) j++;
    const port = parseBoundedInt(text.slice(i + 1, j), 65535);
    if (port === null) return null;
    uri.port = port;
    i = j;
  }
  let q = text.indexOf('?', i);
  if (q < 0) q = n;
  if (i < q) {
    if (text.charCodeAt(i) !== 0x3b) return null;
    const params = parseUriParams(text, i, q);
    if (params === null) return null;
    uri.params = params;
  }
  if (q < n) {
    const headers = parseUriHeaders(text, q + 1);
    if (headers === null) return null;
    uri.headers = headers;
  }
  return uri;
}

/** tel: global or local number, then ;params (RFC 3966 §3). */
function parseTel(text: string, from: number): SipUri | null {
  let semi = text.indexOf(';', from);
  if (semi < 0) semi = text.length;
  if (semi === from) return null;
  for (let i = from; i < semi; i++) {
    const c = text.charCodeAt(i);
    const ok = isHex(c) || c === 0x2b || c === 0x2d || c === 0x2e || c === 0x28 || c === 0x29 || c === 0x2a || c === 0x23;
    if (!ok) return null;
  }
  const params = parseUriParams(text, semi, text.length);
  if (params === null) return null;
  return { scheme: 'tel', user: text.slice(from, semi), host: '', params: params.size === 0 ? NO_PARAMS : params, headers: NO_HEADERS };
}

function lowerScheme(text: string, colon: number): string | null {
  // fast path for the common spellings
  if (colon === 3 && text.startsWith('sip')) return 'sip';
  if (colon === 4 && text.startsWith('sips')) return 'sips';
  // scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
  for (let i = 0; i < colon; i++) {
    const c = text.charCodeAt(i) | 0x20;
    const alpha = c >= 0x61 && c <= 0x7a;
    if (i === 0 ? !alpha : !(alpha || (c >= 0x30 && c <= 0x39) || c === 0x2b || c === 0x2d || c === 0x2e)) {
      return null;
    }
  }
  return text.slice(0, colon).toLowerCase();
}

/** Parse a URI; null when invalid. */
export function parseUri(text: string): SipUri | null {
  const colon = text.indexOf(':');
  if (colon <= 0 || colon + 1 >= text.length) return null;
  const scheme = lowerScheme(text, colon);
  if (scheme === null) return null;
  switch (scheme) {
    case 'sip':
    case 'sips':
    case 'pres':
    case 'im':
      return parseSipLike(text, scheme, colon + 1);
  }
  for (let i = colon + 1; i < text.length; i++) if (!isOpaqueChar(text.charCodeAt(i))) return null;
  if (scheme === 'tel') return parseTel(text, colon + 1);
  return { scheme, host: '', params: NO_PARAMS, headers: NO_HEADERS, opaque: text.slice(colon + 1) };
}

// ---------------------------------------------------------------------------
// Formatting

export function formatUri(uri: SipUri): string {
  if (uri.opaque !== undefined) return `${uri.scheme}:${uri.opaque}`;
  let out = uri.scheme + ':';
  if (uri.scheme === 'tel') {
    out += escapeWith(uri.user ?? '', PARAM_CHARS, true);
  } else {
    if (uri.user !== undefined) {
      out += escapeWith(uri.user, USER_CHARS);
      if (uri.password !== undefined) out += ':' + escapeWith(uri.password, PASSWORD_CHARS);
      out += '@';
    }
    out += uri.host;
    if (uri.port !== undefined) out += ':' + uri.port;
  }
  // params and headers are held as written (escaped form)
  for (const [name, value] of uri.params) {
    out += ';' + escapeWith(name, PARAM_CHARS, true) + (value === null ? '' : '=' + escapeWith(value, PARAM_CHARS, true));
  }
  let sep = '?';
  for (const [name, value] of uri.headers) {
    out += sep + escapeWith(name, HEADER_CHARS, true) + '=' + escapeWith(value, HEADER_CHARS, true);
    sep = '&';
  }
  return out;
}

/** Address of record: "sip:user@host" without port or parameters, host lower-case (sips is folded into sip). */
export function aorOf(uri: SipUri): string {
  if (uri.opaque !== undefined) return `${uri.scheme}:${uri.opaque}`;
  if (uri.scheme === 'tel') return 'tel:' + telDigits(uri.user ?? '');
  const scheme = uri.scheme === 'sips' ? 'sip' : uri.scheme;
  return uri.user === undefined ? `${scheme}:${uri.host}` : `${scheme}:${escapeWith(uri.user, USER_CHARS)}@${uri.host}`;
}

function telDigits(number: string): string {
  return number.replace(/[-.()]/g, '');
}

// ---------------------------------------------------------------------------
// Comparison

const ALWAYS_COMPARED = ['user', 'ttl', 'method', 'maddr', 'transport'];

function paramEq(a: string | null, b: string | null): boolean {
  if (a === null || b === null) return a === b;
  return a === b || unescape(a).toLowerCase() === unescape(b).toLowerCase();
}

export function uriEquals(a: SipUri, b: SipUri): boolean {
  // RFC 3261 §19.1.4
  if (a.scheme !== b.scheme) return false;
  if (a.opaque !== undefined || b.opaque !== undefined) return a.opaque === b.opaque;
  if (a.scheme === 'tel') {
    if (telDigits(a.user ?? '').toLowerCase() !== telDigits(b.user ?? '').toLowerCase()) return false;
  } else {
    if (a.user !== b.user || a.password !== b.password) return false;
    if (a.host !== b.host || a.port !== b.port) return false;
  }
  for (const name of ALWAYS_COMPARED) {
    const av = a.params.get(name);
    const bv = b.params.get(name);
    if (av === undefined && bv === undefined) continue;
    if (av === undefined || bv === undefined || !paramEq(av, bv)) return false;
  }
  for (const [name, av] of a.params) {
    const bv = b.params.get(name);
    if (bv !== undefined && !paramEq(av, bv)) return false;
  }
  if (a.headers.size !== b.headers.size) return false;
  const bHeaders = new Map<string, string>();
  for (const [k, v] of b.headers) bHeaders.set(unescape(k).toLowerCase(), unescape(v));
  for (const [k, v] of a.headers) {
    if (bHeaders.get(unescape(k).toLowerCase()) !== unescape(v)) return false;
  }
  return true;
}

// ---------------------------------------------------------------------------
// name-addr / addr-spec

export interface NameAddr {
  /** unquoted, unescaped */
  displayName?: string;
  uri: SipUri;
  /** read-only: a value without parameters shares NO_PARAMS */
  params: ReadonlyMap<string, string | null>;
}

/** display-name = *(token LWS) / quoted-string; non-ASCII tolerated in the token form. */
function validTokenDisplay(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 128 || isLws(c) || isTokenChar(c)) continue;
    return false;
  }
  return true;
}

/**
 * Parse a From/To/Contact/Route-style value, both `"Name" <uri>;p` and bare
 * `uri;p`. Parameters after a bare addr-spec belong to the header, so a bare
 * URI may not contain ';', '?' or ',' of its own.
 */
export function parseNameAddr(value: string): NameAddr | null {
  const n = value.length;
  let i = skipLws(value, 0);
  if (i >= n) return null;
  let displayName: string | undefined;
  let lt = -1;
  if (value.charCodeAt(i) === 0x22) {
    const q = scanQuoted(value, i);
    if (q === null) return null;
    displayName = q.text;
    i = skipLws(value, q.end);
    if (value.charCodeAt(i) !== 0x3c) return null;
    lt = i;
  } else {
    for (let j = i; j < n; j++) {
      const c = value.charCodeAt(j);
      if (c === 0x3c) {
        lt = j;
        break;
      }
      if (c === 0x3b || c === 0x22) break;
    }
    if (lt >= 0) {
      let end = lt;
      while (end > i && isLws(value.charCodeAt(end - 1))) end--;
      if (end > i) {
        const name = value.slice(i, end);
        if (!validTokenDisplay(name)) return null;
        displayName = name;
      }
    }
  }
  let uriText: string;
  let rest: number;
  if (lt >= 0) {
    const gt = value.indexOf('>', lt + 1);
    if (gt < 0) return null;
    uriText = value.slice(lt + 1, gt);
    rest = gt + 1;
  } else {
    let semi = value.indexOf(';', i);
    if (semi < 0) semi = n;
    let end = semi;
    while (end > i && isLws(value.charCodeAt(end - 1))) end--;
    uriText = value.slice(i, end);
    if (uriText.indexOf('?') >= 0 || uriText.indexOf(',') >= 0) return null;
    rest = semi;
  }
  const uri = parseUri(uriText);
  if (uri === null) return null;
  const params = parseParamsFrom(value, rest);
  if (params === null) return null;
  // parseParams accepts an optional leading ';' but the header grammar requires it
  const after = skipLws(value, rest);
  if (after < n && value.charCodeAt(after) !== 0x3b) return null;
  const out: NameAddr = { uri, params };
  if (displayName !== undefined) out.displayName = displayName;
  return out;
}

/** Always in name-addr form: `"Display" <uri>;params`. */
export function formatNameAddr(na: NameAddr): string {
  const display = na.displayName !== undefined && na.displayName.length > 0 ? quoteString(na.displayName) + ' ' : '';
  return `${display}<${formatUri(na.uri)}>${formatParams(na.params)}`;
}
