/**
 * Parsers for structured SIP header values. Pure functions: malformed input
 * gives null (never an exception). Values are expected unfolded (the message
 * parser joins continuation lines); SP, HTAB, CR and LF all count as LWS here.
 */

// ---------------------------------------------------------------------------
// Character classes (RFC 3261 §25.1)

/** token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~") */
export const TOKEN_CHARS: Uint8Array = charTable("-.!%*_+`'~");

function charTable(extra: string, alnum = true): Uint8Array {
  const t = new Uint8Array(128);
  if (alnum) {
    for (let c = 0x30; c <= 0x39; c++) t[c] = 1;
    for (let c = 0x41; c <= 0x5a; c++) t[c] = 1;
    for (let c = 0x61; c <= 0x7a; c++) t[c] = 1;
  }
  for (let i = 0; i < extra.length; i++) t[extra.charCodeAt(i)] = 1;
  return t;
}

/** Host name, IPv4 and (bracket-less) IPv6 characters; `_` tolerated as seen in the field. */
const HOST_CHARS = charTable('-._');
/** Unquoted generic parameter values: token / host (incl. IPv6 reference) characters. */
const GEN_VALUE_CHARS = charTable("-.!%*_+`'~[]:/@?&$");

export function isTokenChar(code: number): boolean {
  return code < 128 && TOKEN_CHARS[code] === 1;
}

export function isToken(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) if (!isTokenChar(s.charCodeAt(i))) return false;
  return true;
}

export function isLws(code: number): boolean {
  return code === 0x20 || code === 0x09 || code === 0x0d || code === 0x0a;
}

export function skipLws(s: string, i: number): number {
  while (i < s.length && isLws(s.charCodeAt(i))) i++;
  return i;
}

function scanToken(s: string, i: number): number {
  while (i < s.length && isTokenChar(s.charCodeAt(i))) i++;
  return i;
}

/** Trim SP/HTAB/CR/LF only (String#trim would also eat U+FEFF and other Unicode spaces). */
export function trimLws(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && isLws(s.charCodeAt(a))) a++;
  while (b > a && isLws(s.charCodeAt(b - 1))) b--;
  return a === 0 && b === s.length ? s : s.slice(a, b);
}

/**
 * Scan a quoted-string starting at s[i] === '"'. Returns the index after the
 * closing quote and the unescaped content, or null when unterminated.
 */
export function scanQuoted(s: string, i: number): { end: number; text: string } | null {
  let text = '';
  let runStart = i + 1;
  for (let j = i + 1; j < s.length; j++) {
    const c = s.charCodeAt(j);
    if (c === 0x5c /* \ */) {
      if (j + 1 >= s.length) return null;
      text += s.slice(runStart, j) + s[j + 1]!;
      j++;
      runStart = j + 1;
    } else if (c === 0x22 /* " */) {
      text += s.slice(runStart, j);
      return { end: j + 1, text };
    }
  }
  return null;
}

/** A non-empty run of ASCII digits. */
export function isDigits(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return false;
  }
  return true;
}

/** Non-negative decimal integer not above `max`, else null. Leading zeros allowed. */
export function parseBoundedInt(s: string, max: number): number | null {
  if (!isDigits(s)) return null;
  let start = 0;
  while (start < s.length - 1 && s.charCodeAt(start) === 0x30) start++;
  if (s.length - start > 16) return null;
  const n = Number(s.slice(start));
  return n <= max ? n : null;
}

// ---------------------------------------------------------------------------
// Generic parameters

/**
 * The one empty parameter map that parsed values without parameters share
 * (a URI, a Via, a name-addr): most have none, and a Map per value is a
 * good part of the garbage of a transaction. Typed read-only for that.
 */
export const NO_PARAMS: ReadonlyMap<string, string | null> = new Map();

/** walkParams's answer for a malformed list */
const MALFORMED = 1;
/** walkParams's answer when `wanted` is not among well-formed parameters */
const ABSENT = 2;

/**
 * The parameter grammar of parseParams, from `from` in `text`: with `into`,
 * every parameter goes there and the answer is ABSENT; with `wanted` (a
 * lower-case name) and no map, the answer is its value (null for a flag),
 * ABSENT or MALFORMED, and nothing is allocated but that value.
 */
function walkParams(text: string, from: number, into: Map<string, string | null> | null, wanted: string): string | null | typeof MALFORMED | typeof ABSENT {
  const n = text.length;
  let i = skipLws(text, from);
  if (i >= n) return ABSENT;
  if (text.charCodeAt(i) === 0x3b) i++;
  let found: string | null | typeof ABSENT = ABSENT;
  for (;;) {
    i = skipLws(text, i);
    const nameStart = i;
    i = scanToken(text, i);
    if (i === nameStart) return MALFORMED;
    const name = into !== null ? text.slice(nameStart, i).toLowerCase() : undefined;
    // the last of several wins, as in the map
    const isWanted = into === null && sameTokenLower(text, nameStart, i, wanted);
    i = skipLws(text, i);
    let value: string | null = null;
    if (i < n && text.charCodeAt(i) === 0x3d /* = */) {
      i = skipLws(text, i + 1);
      if (i >= n) return MALFORMED;
      if (text.charCodeAt(i) === 0x22) {
        const q = scanQuoted(text, i);
        if (q === null) return MALFORMED;
        value = q.text;
        i = q.end;
      } else {
        const vStart = i;
        while (i < n) {
          const c = text.charCodeAt(i);
          if (c >= 128 || GEN_VALUE_CHARS[c] === 1) i++;
          else break;
        }
        if (i === vStart) return MALFORMED;
        if (into !== null || isWanted) value = text.slice(vStart, i);
      }
      i = skipLws(text, i);
    }
    if (into !== null) into.set(name!, value);
    else if (isWanted) found = value;
    if (i >= n) return into !== null ? ABSENT : found;
    if (text.charCodeAt(i) !== 0x3b) return MALFORMED;
    i++;
  }
}

/** `text[start..end)` with ASCII letters lower-cased equals `lower` (parameter names are tokens: ASCII). */
function sameTokenLower(text: string, start: number, end: number, lower: string): boolean {
  if (end - start !== lower.length) return false;
  for (let k = 0; k < lower.length; k++) {
    const c = text.charCodeAt(start + k);
    if ((c >= 0x41 && c <= 0x5a ? c | 0x20 : c) !== lower.charCodeAt(k)) return false;
  }
  return true;
}

/**
 * `;a=b;c;d="x y"` → Map { a → "b", c → null, d → "x y" }. Names lower-case;
 * quoted values unquoted and unescaped; LWS allowed around ";" and "=" (SEMI,
 * EQUAL). A leading ";" is optional. Empty names, a trailing
 * ";", empty values and unterminated quotes make the whole list malformed.
 */
export function parseParams(text: string): Map<string, string | null> | null {
  const params = new Map<string, string | null>();
  return walkParams(text, 0, params, '') === MALFORMED ? null : params;
}

/** parseParams from `from`, sharing NO_PARAMS when there are none (for values kept read-only). */
export function parseParamsFrom(text: string, from: number): ReadonlyMap<string, string | null> | null {
  if (skipLws(text, from) >= text.length) return NO_PARAMS;
  const params = new Map<string, string | null>();
  return walkParams(text, from, params, '') === MALFORMED ? null : params;
}

/**
 * The value of one parameter (`lower`: its lower-case name) in the list from
 * `from`, as parseParams(text.slice(from)).get(lower) would give it, without
 * building the map: undefined when absent or when the list is malformed.
 */
export function paramValue(text: string, from: number, lower: string): string | null | undefined {
  const v = walkParams(text, from, null, lower);
  return v === MALFORMED || v === ABSENT ? undefined : v;
}

/** Parameters following a header value's main part at `i`: nothing or `;...`. */
function paramsAfter(value: string, i: number): Map<string, string | null> | null {
  i = skipLws(value, i);
  if (i >= value.length) return new Map();
  if (value.charCodeAt(i) !== 0x3b) return null;
  return parseParams(value.slice(i));
}

/** Format parameters as `;name[=value]`, quoting values that are not token/host text. */
export function formatParams(params: ReadonlyMap<string, string | null>): string {
  let out = '';
  for (const [name, value] of params) {
    out += ';' + name;
    if (value !== null) out += '=' + formatParamValue(value);
  }
  return out;
}

function formatParamValue(value: string): string {
  let plain = value.length > 0;
  for (let i = 0; i < value.length && plain; i++) {
    const c = value.charCodeAt(i);
    if (c >= 128 || GEN_VALUE_CHARS[c] !== 1) plain = false;
  }
  return plain ? value : quoteString(value);
}

/** Make a quoted-string: `"` and `\` escaped, CR/LF (not allowed in headers) replaced by a space. */
export function quoteString(text: string): string {
  return '"' + text.replace(/[\r\n]/g, ' ').replace(/(["\\])/g, '\\$1') + '"';
}

/**
 * Index in a From/To/Contact-style value where the header parameters start
 * (at the `;`), or value.length when there are none, or -1 when a quoted
 * string or `<` is unterminated. Parameters after a bare addr-spec belong to
 * the header (RFC 3261 §20.10).
 */
export function headerParamsStart(value: string): number {
  const n = value.length;
  for (let i = 0; i < n; i++) {
    const c = value.charCodeAt(i);
    if (c === 0x22) {
      const q = scanQuoted(value, i);
      if (q === null) return -1;
      i = q.end - 1;
    } else if (c === 0x3c /* < */) {
      const gt = value.indexOf('>', i + 1);
      if (gt < 0) return -1;
      const semi = value.indexOf(';', gt + 1);
      return semi < 0 ? n : semi;
    } else if (c === 0x3b) {
      return i;
    }
  }
  return n;
}

/** The tag parameter of a From or To value. */
export function tagOf(value: string): string | undefined {
  const start = headerParamsStart(value);
  if (start < 0 || start >= value.length) return undefined;
  const tag = paramValue(value, start, 'tag');
  return tag === null || tag === undefined || tag.length === 0 ? undefined : tag;
}

// ---------------------------------------------------------------------------
// Via (RFC 3261 §20.42)

export interface Via {
  /** upper-case transport: UDP TCP TLS WS WSS SCTP (others kept as written, upper-cased) */
  protocol: string;
  host: string;
  port?: number;
  /** every parameter as received, including branch/received/rport (read-only: a Via without any shares NO_PARAMS) */
  params: ReadonlyMap<string, string | null>;
  branch?: string;
  received?: string;
  /** null = present without a value (RFC 3581 request for the source port) */
  rport?: number | null;
}

function scanHost(s: string, i: number): number {
  if (s.charCodeAt(i) === 0x5b /* [ */) {
    const close = s.indexOf(']', i + 1);
    if (close < 0 || close === i + 1) return i;
    for (let j = i + 1; j < close; j++) {
      const c = s.charCodeAt(j);
      const hex = (c >= 0x30 && c <= 0x3a) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66) || c === 0x2e;
      if (!hex) return i;
    }
    return close + 1;
  }
  while (i < s.length) {
    const c = s.charCodeAt(i);
    if (c < 128 && HOST_CHARS[c] === 1) i++;
    else break;
  }
  return i;
}

/** One Via value (a single element of a possibly comma-separated header). */
export function parseVia(value: string): Via | null {
  const s = value;
  let i = skipLws(s, 0);
  let j = scanToken(s, i);
  if (s.slice(i, j).toUpperCase() !== 'SIP') return null;
  i = skipLws(s, j);
  if (s.charCodeAt(i) !== 0x2f /* / */) return null;
  i = skipLws(s, i + 1);
  j = scanToken(s, i);
  if (s.slice(i, j) !== '2.0') return null;
  i = skipLws(s, j);
  if (s.charCodeAt(i) !== 0x2f) return null;
  i = skipLws(s, i + 1);
  j = scanToken(s, i);
  if (j === i) return null;
  const protocol = s.slice(i, j).toUpperCase();
  i = skipLws(s, j);
  j = scanHost(s, i);
  if (j === i) return null;
  const host = s.slice(i, j);
  i = skipLws(s, j);
  let port: number | undefined;
  if (s.charCodeAt(i) === 0x3a /* : */) {
    i = skipLws(s, i + 1);
    j = i;
    while (j < s.length && s.charCodeAt(j) >= 0x30 && s.charCodeAt(j) <= 0x39) j++;
    const p = parseBoundedInt(s.slice(i, j), 65535);
    if (p === null || p === 0) return null;
    port = p;
    i = skipLws(s, j);
  }
  let params: ReadonlyMap<string, string | null>;
  if (i >= s.length) params = NO_PARAMS;
  else {
    if (s.charCodeAt(i) !== 0x3b) return null;
    const parsed = parseParamsFrom(s, i);
    if (parsed === null) return null;
    params = parsed;
  }
  const via: Via = { protocol, host, params };
  if (port !== undefined) via.port = port;
  const branch = params.get('branch');
  if (branch !== undefined) {
    if (branch === null) return null;
    via.branch = branch;
  }
  const received = params.get('received');
  if (received !== undefined) {
    if (received === null) return null;
    via.received = received;
  }
  const rport = params.get('rport');
  if (rport !== undefined) {
    if (rport === null) via.rport = null;
    else {
      const rp = parseBoundedInt(rport, 65535);
      if (rp === null) return null;
      via.rport = rp;
    }
  }
  return via;
}

/**
 * Format a Via. The branch/received/rport fields win over the same names in
 * `params`; parameters keep their order, fields absent from `params` follow.
 */
export function formatVia(v: Via): string {
  let out = `SIP/2.0/${v.protocol.toUpperCase()} ${v.host}`;
  if (v.port !== undefined) out += ':' + v.port;
  const done = { branch: false, received: false, rport: false };
  for (const [name, value] of v.params) {
    if (name === 'branch' && v.branch !== undefined) {
      out += ';branch=' + v.branch;
      done.branch = true;
    } else if (name === 'received' && v.received !== undefined) {
      out += ';received=' + v.received;
      done.received = true;
    } else if (name === 'rport' && v.rport !== undefined) {
      out += v.rport === null ? ';rport' : ';rport=' + v.rport;
      done.rport = true;
    } else {
      out += ';' + name;
      if (value !== null) out += '=' + formatParamValue(value);
    }
  }
  if (!done.branch && v.branch !== undefined) out += ';branch=' + v.branch;
  if (!done.received && v.received !== undefined) out += ';received=' + v.received;
  if (!done.rport && v.rport !== undefined) out += v.rport === null ? ';rport' : ';rport=' + v.rport;
  return out;
}

// ---------------------------------------------------------------------------
// Scalar headers

const MAX_CSEQ = 2 ** 31 - 1;
const MAX_DELTA = 2 ** 32 - 1;

/** `4711 SUBSCRIBE`; sequence number below 2**31 (RFC 3261 §8.1.1.5). */
export function parseCSeq(value: string): { seq: number; method: string } | null {
  let i = skipLws(value, 0);
  let j = i;
  while (j < value.length && value.charCodeAt(j) >= 0x30 && value.charCodeAt(j) <= 0x39) j++;
  const seq = parseBoundedInt(value.slice(i, j), MAX_CSEQ);
  if (seq === null) return null;
  i = skipLws(value, j);
  if (i === j) return null;
  j = scanToken(value, i);
  if (j === i) return null;
  const method = value.slice(i, j);
  if (skipLws(value, j) !== value.length) return null;
  return { seq, method };
}

/** Expires / Min-Expires: delta-seconds, 0 .. 2**32-1. */
export function parseExpires(value: string | undefined): number | null {
  if (value === undefined) return null;
  return parseBoundedInt(trimLws(value), MAX_DELTA);
}

// ---------------------------------------------------------------------------
// Event framework headers (RFC 6665 §8.2.1, §8.2.3)

export interface EventHeader {
  /** lower-case package with template, e.g. presence.winfo */
  event: string;
  id?: string;
  params: Map<string, string | null>;
}

export function parseEvent(value: string): EventHeader | null {
  const i = skipLws(value, 0);
  const j = scanToken(value, i);
  if (j === i) return null;
  const event = value.slice(i, j).toLowerCase();
  const params = paramsAfter(value, j);
  if (params === null) return null;
  const out: EventHeader = { event, params };
  const id = params.get('id');
  if (id !== undefined) {
    if (id === null) return null;
    out.id = id;
  }
  return out;
}

export interface SubscriptionState {
  /** active | pending | terminated | other, lower-case */
  state: string;
  expires?: number;
  reason?: string;
  retryAfter?: number;
}

export function parseSubscriptionState(value: string): SubscriptionState | null {
  const i = skipLws(value, 0);
  const j = scanToken(value, i);
  if (j === i) return null;
  const params = paramsAfter(value, j);
  if (params === null) return null;
  const out: SubscriptionState = { state: value.slice(i, j).toLowerCase() };
  const expires = params.get('expires');
  if (expires !== undefined) {
    const n = expires === null ? null : parseBoundedInt(expires, MAX_DELTA);
    if (n === null) return null;
    out.expires = n;
  }
  const retry = params.get('retry-after');
  if (retry !== undefined) {
    const n = retry === null ? null : parseBoundedInt(retry, MAX_DELTA);
    if (n === null) return null;
    out.retryAfter = n;
  }
  const reason = params.get('reason');
  if (reason !== undefined) {
    if (reason === null) return null;
    out.reason = reason.toLowerCase();
  }
  return out;
}

// ---------------------------------------------------------------------------
// Media types (RFC 3261 §20.1, §20.15)

export interface MediaType {
  type: string;
  subtype: string;
  /** parameters other than q, names lower-case */
  params: Map<string, string | null>;
  q: number;
}

function parseMediaRange(value: string, allowWildcard: boolean): MediaType | null {
  let i = skipLws(value, 0);
  let j = scanToken(value, i);
  if (j === i) return null;
  const type = value.slice(i, j).toLowerCase();
  i = skipLws(value, j);
  if (value.charCodeAt(i) !== 0x2f) return null;
  i = skipLws(value, i + 1);
  j = scanToken(value, i);
  if (j === i) return null;
  const subtype = value.slice(i, j).toLowerCase();
  if (type === '*' || subtype === '*') {
    if (!allowWildcard) return null;
    if (type === '*' && subtype !== '*') return null;
  }
  const params = paramsAfter(value, j);
  if (params === null) return null;
  return { type, subtype, params, q: 1 };
}

/** Content-Type value; q is always 1. */
export function parseMediaType(value: string): MediaType | null {
  return parseMediaRange(value, false);
}

function parseQValue(s: string): number | null {
  // qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )
  if (s.length === 0 || s.length > 5) return null;
  const c0 = s.charCodeAt(0);
  if (c0 !== 0x30 && c0 !== 0x31) return null;
  if (s.length > 1) {
    if (s.charCodeAt(1) !== 0x2e) return null;
    for (let k = 2; k < s.length; k++) {
      const c = s.charCodeAt(k);
      if (c < 0x30 || c > 0x39) return null;
      if (c0 === 0x31 && c !== 0x30) return null;
    }
  }
  return Number(s);
}

/** Accept values as returned by headers.getAll('accept'): `*` wildcards allowed, q parsed. */
export function parseAccept(values: string[]): MediaType[] | null {
  const out: MediaType[] = [];
  for (const v of values) {
    const m = parseMediaRange(v, true);
    if (m === null) return null;
    const q = m.params.get('q');
    if (q !== undefined) {
      const qv = q === null ? null : parseQValue(q);
      if (qv === null) return null;
      m.q = qv;
      m.params.delete('q');
    }
    out.push(m);
  }
  return out;
}
