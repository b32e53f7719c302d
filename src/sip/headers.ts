/**
 * Ordered SIP header collection. Names are stored in their canonical long,
 * lower-case form (compact forms are expanded by the parser, RFC 3261 §7.3.3);
 * `raw` keeps the spelling to use on the wire.
 */

/** RFC 3261 §7.3.3 plus RFC 3265/3903/6665 compact forms. */
export const COMPACT_FORMS: Readonly<Record<string, string>> = {
  i: 'call-id',
  m: 'contact',
  e: 'content-encoding',
  l: 'content-length',
  c: 'content-type',
  f: 'from',
  s: 'subject',
  k: 'supported',
  t: 'to',
  v: 'via',
  o: 'event',
  u: 'allow-events',
  r: 'refer-to',
  b: 'referred-by',
  x: 'session-expires',
  j: 'reject-contact',
  a: 'accept-contact',
  d: 'request-disposition',
  y: 'identity',
  n: 'identity-info',
};

const WIRE_NAMES: Readonly<Record<string, string>> = {
  'call-id': 'Call-ID',
  cseq: 'CSeq',
  www: 'WWW',
  'www-authenticate': 'WWW-Authenticate',
  'sip-etag': 'SIP-ETag',
  'sip-if-match': 'SIP-If-Match',
  'min-expires': 'Min-Expires',
  'mime-version': 'MIME-Version',
  'rack': 'RAck',
  'rseq': 'RSeq',
};

/**
 * Names already looked up: every Headers.get/has/append of the stack passes
 * one of a few dozen literals, so one map lookup replaces trim, lower-case and
 * the compact-form lookup. Bounded (names may come from peers).
 */
const canonicalNames = new Map<string, string>();
const CANONICAL_CACHE_MAX = 256;

/** Canonical (lower-case, long form) name of a header as written on the wire. */
export function canonicalHeaderName(name: string): string {
  const known = canonicalNames.get(name);
  if (known !== undefined) return known;
  const lower = name.trim().toLowerCase();
  const canonical = COMPACT_FORMS[lower] ?? lower;
  if (canonicalNames.size < CANONICAL_CACHE_MAX) canonicalNames.set(name, canonical);
  return canonical;
}

/** The spelling used when serializing a canonical header name. */
export function wireHeaderName(canonical: string): string {
  const known = WIRE_NAMES[canonical];
  if (known !== undefined) return known;
  return canonical
    .split('-')
    .map((part) => (part.length === 0 ? part : part[0]!.toUpperCase() + part.slice(1)))
    .join('-');
}

/**
 * Headers whose values are comma-separated lists (RFC 3261 §7.3.1), so that
 * `a, b` in one header equals `a` and `b` in two. Headers carrying
 * name-addr/auth syntax with embedded commas are split quote-aware.
 */
const LIST_HEADERS = new Set([
  'via',
  'contact',
  'route',
  'record-route',
  'accept',
  'accept-encoding',
  'accept-language',
  'allow',
  'allow-events',
  'supported',
  'require',
  'proxy-require',
  'unsupported',
  'content-encoding',
  'in-reply-to',
]);

export function isListHeader(canonical: string): boolean {
  return LIST_HEADERS.has(canonical);
}

/**
 * Split a header value at top-level commas, honouring quoted strings and
 * angle brackets (a URI in <...> may contain commas).
 */
export function splitListValue(value: string): string[] {
  const out: string[] = [];
  let depthAngle = 0;
  let inQuote = false;
  let start = 0;
  for (let i = 0; i < value.length; i++) {
    const ch = value.charCodeAt(i);
    if (inQuote) {
      if (ch === 0x5c /* \ */) i++;
      else if (ch === 0x22 /* " */) inQuote = false;
      continue;
    }
    if (ch === 0x22) inQuote = true;
    else if (ch === 0x3c /* < */) depthAngle++;
    else if (ch === 0x3e /* > */) depthAngle = Math.max(0, depthAngle - 1);
    else if (ch === 0x2c /* , */ && depthAngle === 0) {
      const part = value.slice(start, i).trim();
      if (part.length > 0) out.push(part);
      start = i + 1;
    }
  }
  const last = value.slice(start).trim();
  if (last.length > 0) out.push(last);
  return out;
}

export interface HeaderField {
  /** canonical lower-case long name */
  readonly name: string;
  value: string;
}

export class Headers implements Iterable<HeaderField> {
  private readonly fields: HeaderField[] = [];

  static from(entries: ReadonlyArray<readonly [string, string]>): Headers {
    const h = new Headers();
    for (const [n, v] of entries) h.append(n, v);
    return h;
  }

  [Symbol.iterator](): Iterator<HeaderField> {
    return this.fields[Symbol.iterator]();
  }

  get size(): number {
    return this.fields.length;
  }

  has(name: string): boolean {
    const n = canonicalHeaderName(name);
    return this.fields.some((f) => f.name === n);
  }

  /** First header value of that name, unsplit. */
  get(name: string): string | undefined {
    const n = canonicalHeaderName(name);
    for (const f of this.fields) if (f.name === n) return f.value;
    return undefined;
  }

  /**
   * All values of that name. For list headers (§7.3.1) each comma-separated
   * element is its own entry, so `Via: a, b` and two Via lines read alike.
   */
  getAll(name: string): string[] {
    const n = canonicalHeaderName(name);
    const list = isListHeader(n);
    const out: string[] = [];
    for (const f of this.fields) {
      if (f.name !== n) continue;
      if (list) out.push(...splitListValue(f.value));
      else out.push(f.value);
    }
    return out;
  }

  append(name: string, value: string): this {
    this.fields.push({ name: canonicalHeaderName(name), value });
    return this;
  }

  /** Append when `name` is already canonical (lower-case long form): the parser's fast path. */
  appendCanonical(name: string, value: string): this {
    this.fields.push({ name, value });
    return this;
  }

  /** Put a header first (used for Via on requests we forward or originate). */
  prepend(name: string, value: string): this {
    this.fields.unshift({ name: canonicalHeaderName(name), value });
    return this;
  }

  /** Replace every header of that name by one value (appended where absent). */
  set(name: string, value: string): this {
    const n = canonicalHeaderName(name);
    const idx = this.fields.findIndex((f) => f.name === n);
    if (idx < 0) {
      this.fields.push({ name: n, value });
      return this;
    }
    this.fields[idx]!.value = value;
    for (let i = this.fields.length - 1; i > idx; i--) if (this.fields[i]!.name === n) this.fields.splice(i, 1);
    return this;
  }

  delete(name: string): this {
    const n = canonicalHeaderName(name);
    for (let i = this.fields.length - 1; i >= 0; i--) if (this.fields[i]!.name === n) this.fields.splice(i, 1);
    return this;
  }

  clone(): Headers {
    const h = new Headers();
    for (const f of this.fields) h.fields.push({ name: f.name, value: f.value });
    return h;
  }
}
