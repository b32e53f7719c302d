/**
 * SIP message parser (RFC 3261 §7) with the validation a server needs before
 * it answers, and the Content-Length framer for stream transports (§18.3).
 *
 * The header block is decoded once and scanned with indexOf; structured
 * values are parsed only for the headers validated here (Via, From, To,
 * Contact, CSeq, Call-ID, Max-Forwards, Expires, Date, Content-Length). The
 * body stays a view on the received bytes and is never decoded.
 */
import { COMPACT_FORMS, Headers, splitListValue } from './headers.js';
import type { SipMessage, SipRequest, SipResponse } from './message.js';
import { isDigits, isTokenChar, isToken, parseBoundedInt, parseCSeq, parseExpires, parseVia, trimLws, type Via } from './header-values.js';
import { parseNameAddr, parseUri } from './uri.js';

export type ParseResult =
  | { ok: true; message: SipMessage }
  | {
      ok: false;
      /** 400; 505 bad version; 416 unsupported Request-URI scheme; 513 too large */
      status: number;
      /** reason phrase naming the problem, e.g. "Bad Request - malformed CSeq" */
      reason: string;
      /** present when the request can be answered (request line, top Via, From, To, Call-ID, CSeq readable) */
      request?: SipRequest;
    };

export interface ParseOptions {
  /** larger messages give 513 */
  maxSize?: number;
  /** stream transport: Content-Length required */
  stream?: boolean;
}

/** Request-URI schemes this server accepts; others are answered 416 (RFC 3261 §8.2.2.1). */
export const REQUEST_URI_SCHEMES: ReadonlySet<string> = new Set(['sip', 'sips', 'tel', 'pres', 'im']);

const CR = 0x0d;
const LF = 0x0a;
const HEADER_END = Buffer.from('\r\n\r\n', 'latin1');
const EMPTY = Buffer.alloc(0);

// Headers tracked while scanning: presence bit, and duplicates for the single-valued ones.
const H_VIA = 1;
const H_FROM = 2;
const H_TO = 4;
const H_CALL_ID = 8;
const H_CSEQ = 16;
const H_MAX_FORWARDS = 32;
const H_CONTENT_LENGTH = 64;
const SINGLE_VALUED = H_FROM | H_TO | H_CALL_ID | H_CSEQ | H_MAX_FORWARDS | H_CONTENT_LENGTH;
const WIRE: Readonly<Record<number, string>> = {
  [H_VIA]: 'Via',
  [H_FROM]: 'From',
  [H_TO]: 'To',
  [H_CALL_ID]: 'Call-ID',
  [H_CSEQ]: 'CSeq',
  [H_MAX_FORWARDS]: 'Max-Forwards',
  [H_CONTENT_LENGTH]: 'Content-Length',
};
const MANDATORY_ORDER = [H_VIA, H_FROM, H_TO, H_CALL_ID, H_CSEQ];

/** What the header scan collected besides the Headers themselves. */
interface Scan {
  seen: number;
  dup: number;
  error: string | undefined;
  from: string;
  to: string;
  callId: string;
  cseq: string;
  maxForwards: string;
  contentLength: string;
  expires: string | undefined;
  date: string | undefined;
  via: string[];
  contact: string[];
}

/** Canonical names interned by length, so known header names need no allocation. */
const KNOWN_NAMES: string[][] = [];
for (const name of [
  'via', 'from', 'to', 'call-id', 'cseq', 'max-forwards', 'content-length', 'contact', 'expires', 'event',
  'accept', 'allow', 'allow-events', 'supported', 'require', 'user-agent', 'server', 'route', 'record-route',
  'content-type', 'subscription-state', 'min-expires', 'sip-etag', 'sip-if-match', 'authorization',
  'proxy-authorization', 'www-authenticate', 'proxy-authenticate', 'date', 'subject', 'accept-encoding',
  'accept-language', 'content-encoding', 'content-disposition', 'unsupported', 'warning', 'retry-after',
  'p-asserted-identity', 'session-expires', 'mime-version',
]) {
  (KNOWN_NAMES[name.length] ??= []).push(name);
}

/** Lower-case `head[start..end)` as a header name, reusing the interned string when known. */
function headerName(head: string, start: number, end: number): string {
  const len = end - start;
  if (len === 1) {
    const lower = head.slice(start, end).toLowerCase();
    return COMPACT_FORMS[lower] ?? lower;
  }
  const candidates = KNOWN_NAMES[len];
  if (candidates !== undefined) {
    for (const name of candidates) {
      let i = 0;
      // names are token characters: OR-ing 0x20 lower-cases letters and keeps '-' and digits
      while (i < len && (head.charCodeAt(start + i) | 0x20) === name.charCodeAt(i)) i++;
      if (i === len) return name;
    }
  }
  return head.slice(start, end).toLowerCase();
}

function isSpTab(c: number): boolean {
  return c === 0x20 || c === 0x09;
}

function trimEndSpTab(s: string): string {
  let e = s.length;
  while (e > 0 && isSpTab(s.charCodeAt(e - 1))) e--;
  return e === s.length ? s : s.slice(0, e);
}

function trimStartSpTab(s: string): string {
  let b = 0;
  while (b < s.length && isSpTab(s.charCodeAt(b))) b++;
  return b === 0 ? s : s.slice(b);
}

/** Split the header lines (after the start line) into `headers`, noting what validation needs. */
function scanHeaders(head: string, pos: number, headers: Headers): Scan {
  const scan: Scan = {
    seen: 0,
    dup: 0,
    error: undefined,
    from: '',
    to: '',
    callId: '',
    cseq: '',
    maxForwards: '',
    contentLength: '',
    expires: undefined,
    date: undefined,
    via: [],
    contact: [],
  };
  const n = head.length;
  while (pos < n) {
    let eol = head.indexOf('\r\n', pos);
    if (eol < 0) eol = n;
    let next = eol + 2;
    const lineStart = pos;
    pos = next;
    let colon = head.indexOf(':', lineStart);
    if (colon < 0 || colon > eol) colon = -1;
    let nameEnd = colon;
    while (nameEnd > lineStart && isSpTab(head.charCodeAt(nameEnd - 1))) nameEnd--;
    let validName = nameEnd > lineStart;
    for (let i = lineStart; i < nameEnd && validName; i++) validName = isTokenChar(head.charCodeAt(i));
    // the value, unfolding continuation lines (RFC 3261 §7.3.1)
    let value: string;
    if (next < n && isSpTab(head.charCodeAt(next))) {
      let joined = head.slice(colon + 1, eol);
      while (next < n && isSpTab(head.charCodeAt(next))) {
        let e2 = head.indexOf('\r\n', next);
        if (e2 < 0) e2 = n;
        joined = trimEndSpTab(joined) + ' ' + trimStartSpTab(head.slice(next, e2));
        next = e2 + 2;
      }
      pos = next;
      value = trimLws(joined);
    } else {
      let a = colon + 1;
      let b = eol;
      while (a < b && isSpTab(head.charCodeAt(a))) a++;
      while (b > a && isSpTab(head.charCodeAt(b - 1))) b--;
      value = head.slice(a, b);
    }
    if (!validName) {
      scan.error ??= 'Bad Request - malformed header line';
      continue;
    }
    const name = headerName(head, lineStart, nameEnd);
    headers.appendCanonical(name, value);
    let bit = 0;
    switch (name) {
      case 'via':
        bit = H_VIA;
        scan.via.push(value);
        break;
      case 'from':
        bit = H_FROM;
        scan.from = value;
        break;
      case 'to':
        bit = H_TO;
        scan.to = value;
        break;
      case 'call-id':
        bit = H_CALL_ID;
        scan.callId = value;
        break;
      case 'cseq':
        bit = H_CSEQ;
        scan.cseq = value;
        break;
      case 'max-forwards':
        bit = H_MAX_FORWARDS;
        scan.maxForwards = value;
        break;
      case 'content-length':
        bit = H_CONTENT_LENGTH;
        if (scan.seen & bit) {
          // several equal Content-Length values still frame the message; still reported as duplicate
          if (trimLws(value) !== trimLws(scan.contentLength)) scan.contentLength = '?';
        } else scan.contentLength = value;
        break;
      case 'contact':
        scan.contact.push(value);
        break;
      case 'expires':
        scan.expires ??= value;
        break;
      case 'date':
        scan.date ??= value;
        break;
    }
    if (bit !== 0) {
      if (scan.seen & bit & SINGLE_VALUED) scan.dup |= bit;
      scan.seen |= bit;
    }
  }
  return scan;
}

interface RequestLine {
  method: string;
  uri: string;
  /** problem with an otherwise splittable line */
  status: number;
  reason: string;
}

/** `Method SP Request-URI SP SIP-Version` (RFC 3261 §7.1); null when it cannot even be split. */
function parseRequestLine(line: string): RequestLine | null {
  let end = line.length;
  while (end > 0 && isSpTab(line.charCodeAt(end - 1))) end--;
  const trailing = end !== line.length;
  const sp1 = line.indexOf(' ');
  const sp2 = line.lastIndexOf(' ', end - 1);
  if (sp1 <= 0 || sp2 <= sp1) return null;
  const method = line.slice(0, sp1);
  if (!isToken(method)) return null;
  const rawUri = line.slice(sp1 + 1, sp2);
  const uri = trimLws(rawUri);
  if (uri.length === 0) return null;
  const out: RequestLine = { method, uri, status: 0, reason: '' };
  const version = line.slice(sp2 + 1, end);
  const v = checkVersion(version);
  if (v !== 0) {
    out.status = v;
    out.reason = v === 505 ? 'Version Not Supported' : 'Bad Request - malformed request line';
  } else if (trailing || uri !== rawUri || /[ \t]/.test(uri)) {
    out.status = 400;
    out.reason = 'Bad Request - malformed request line';
  }
  return out;
}

/** 0 for SIP/2.0, 505 for another SIP version, 400 for anything else. */
function checkVersion(v: string): number {
  if (v === 'SIP/2.0') return 0;
  const m = /^SIP\/(\d+)\.(\d+)$/i.exec(v);
  if (m === null) return 400;
  return Number(m[1]) === 2 && Number(m[2]) === 0 ? 0 : 505;
}

function checkRequestUri(uri: string): { status: number; reason: string } | null {
  const parsed = parseUri(uri);
  if (parsed === null) return { status: 400, reason: 'Bad Request - malformed Request-URI' };
  if (!REQUEST_URI_SCHEMES.has(parsed.scheme)) return { status: 416, reason: 'Unsupported URI Scheme' };
  // RFC 3261 §19.1.1: header components are not allowed in a Request-URI
  if (parsed.headers.size > 0) return { status: 400, reason: 'Bad Request - header fields in Request-URI' };
  return null;
}


/**
 * The top Via of the message parsed last, as checkHeaders parsed it, for
 * takeTopVia: the transaction layer reads the top Via of every message the
 * transports deliver, right after this parse, and need not parse it again.
 */
let topViaValue: string | undefined;
let topVia: Via | null = null;

/**
 * parseVia(value), from the parse that just checked it when `value` is that
 * message's top Via. Handed out once (the caller may change it, as the
 * transaction layer does when it stamps received and rport), then forgotten.
 */
export function takeTopVia(value: string): Via | null {
  if (topViaValue !== undefined && topViaValue === value) {
    const via = topVia;
    topViaValue = undefined;
    topVia = null;
    return via;
  }
  return parseVia(value);
}

/** Header value checks shared by requests and responses; returns a reason or undefined. */
function checkHeaders(scan: Scan, method: string | undefined): { reason: string | undefined; topViaOk: boolean } {
  const bad = method === undefined ? 'Bad Response' : 'Bad Request';
  let topViaOk = false;
  let reason: string | undefined;
  for (const bit of MANDATORY_ORDER) {
    if ((scan.seen & bit) === 0) return { reason: `${bad} - missing ${WIRE[bit]!} header`, topViaOk };
  }
  let first = true;
  topViaValue = undefined;
  topVia = null;
  for (const raw of scan.via) {
    const parts = raw.indexOf(',') < 0 ? [raw] : splitListValue(raw);
    // empty list elements ("a,,b", a trailing comma) are not allowed in Via
    if (parts.length === 0 || countCommas(raw) !== parts.length - 1) reason ??= `${bad} - malformed Via`;
    for (const part of parts) {
      const via = parseVia(part);
      const ok = via !== null;
      if (first) {
        topViaOk = ok;
        topViaValue = part;
        topVia = via;
      }
      first = false;
      if (!ok) reason ??= `${bad} - malformed Via`;
    }
  }
  if (reason !== undefined) return { reason, topViaOk };
  if (scan.dup !== 0) {
    for (const bit of [H_FROM, H_TO, H_CALL_ID, H_CSEQ, H_MAX_FORWARDS, H_CONTENT_LENGTH]) {
      if (scan.dup & bit) return { reason: `${bad} - duplicate ${WIRE[bit]!} header`, topViaOk };
    }
  }
  const cseq = parseCSeq(scan.cseq);
  if (cseq === null) return { reason: `${bad} - malformed CSeq`, topViaOk };
  if (method !== undefined && cseq.method !== method) {
    return { reason: `${bad} - CSeq method does not match request method`, topViaOk };
  }
  // Call-ID = word [ "@" word ]: no LWS
  if (scan.callId.length === 0 || /[\s]/.test(scan.callId)) return { reason: `${bad} - malformed Call-ID`, topViaOk };
  if (parseNameAddr(scan.from) === null) return { reason: `${bad} - malformed From`, topViaOk };
  if (parseNameAddr(scan.to) === null) return { reason: `${bad} - malformed To`, topViaOk };
  if (scan.seen & H_MAX_FORWARDS && parseBoundedInt(trimLws(scan.maxForwards), 255) === null) {
    return { reason: `${bad} - malformed Max-Forwards`, topViaOk };
  }
  for (const raw of scan.contact) {
    if (raw === '*') continue;
    const parts = raw.indexOf(',') < 0 ? [raw] : splitListValue(raw);
    if (parts.length === 0) return { reason: `${bad} - malformed Contact`, topViaOk };
    for (const part of parts) {
      if (parseNameAddr(part) === null) return { reason: `${bad} - malformed Contact`, topViaOk };
    }
  }
  if (scan.expires !== undefined && parseExpires(scan.expires) === null) {
    return { reason: `${bad} - malformed Expires`, topViaOk };
  }
  // RFC 3261 §20.17: Date is always in GMT. Only the zone is checked (the one RFC 4475
  // §3.1.2.12 case); the gateway never uses Date, so other quirks are let through.
  if (scan.date !== undefined && !/\bGMT$/i.test(scan.date)) {
    return { reason: `${bad} - malformed Date`, topViaOk };
  }
  return { reason: undefined, topViaOk };
}

function countCommas(s: string): number {
  let n = 0;
  for (let i = s.indexOf(','); i >= 0; i = s.indexOf(',', i + 1)) n++;
  return n;
}

function failure(status: number, reason: string, request?: SipRequest): ParseResult {
  return request === undefined ? { ok: false, status, reason } : { ok: false, status, reason, request };
}

/** True for a datagram or chunk made only of CR/LF (a keep-alive). */
export function isKeepAlive(data: Buffer): boolean {
  if (data.length === 0) return false;
  for (let i = 0; i < data.length; i++) if (data[i] !== CR && data[i] !== LF) return false;
  return true;
}

/**
 * Parse one SIP message. Datagram semantics by default:
 * Content-Length optional (absent: the body is the rest), a longer body is
 * truncated, a shorter one is an error. `stream: true` requires Content-Length.
 * Never throws.
 */
export function parseMessage(data: Buffer, options: ParseOptions = {}): ParseResult {
  try {
    return parse(data, options);
  } catch {
    return failure(400, 'Bad Request - unparseable message');
  }
}

function parse(data: Buffer, options: ParseOptions): ParseResult {
  const len = data.length;
  let start = 0;
  // RFC 3261 §7.5: CRLFs before the start line are ignored
  while (start + 1 < len && data[start] === CR && data[start + 1] === LF) start += 2;
  if (start >= len || isKeepAlive(data.subarray(start))) return failure(400, 'Bad Request - empty message');
  let headEnd = data.indexOf(HEADER_END, start);
  let bodyStart: number;
  if (headEnd < 0) {
    if (options.stream === true) return failure(400, 'Bad Request - incomplete header block');
    // a datagram without the empty line: take it as headers only
    headEnd = len;
    while (headEnd >= start + 2 && data[headEnd - 2] === CR && data[headEnd - 1] === LF) headEnd -= 2;
    bodyStart = len;
  } else {
    bodyStart = headEnd + 4;
  }
  const head = data.toString('utf8', start, headEnd);
  let lineEnd = head.indexOf('\r\n');
  if (lineEnd < 0) lineEnd = head.length;
  const startLine = head.slice(0, lineEnd);
  const isResponse = startLine.length >= 4 && startLine.slice(0, 4).toUpperCase() === 'SIP/';

  let status = 0;
  let reason = '';
  let requestLine: RequestLine | null = null;
  let statusCode = 0;
  let statusReason = '';
  if (isResponse) {
    const sl = parseStatusLine(startLine);
    if (typeof sl === 'string') {
      status = 400;
      reason = sl;
    } else {
      statusCode = sl.status;
      statusReason = sl.reason;
    }
  } else {
    requestLine = parseRequestLine(startLine);
    if (requestLine === null) return failure(400, 'Bad Request - malformed request line');
    if (requestLine.status !== 0) {
      status = requestLine.status;
      reason = requestLine.reason;
    } else {
      const uriProblem = checkRequestUri(requestLine.uri);
      if (uriProblem !== null) {
        status = uriProblem.status;
        reason = uriProblem.reason;
      }
    }
  }

  const headers = new Headers();
  const scan = scanHeaders(head, lineEnd + 2, headers);
  if (status === 0 && scan.error !== undefined) {
    status = 400;
    reason = scan.error;
  }
  const checked = checkHeaders(scan, requestLine?.method);
  if (status === 0 && checked.reason !== undefined) {
    status = 400;
    reason = checked.reason;
  }

  // Body and Content-Length (RFC 3261 §18.3, §20.14)
  let bodyEnd = len;
  if (scan.seen & H_CONTENT_LENGTH) {
    const cl = trimLws(scan.contentLength);
    if (!isDigits(cl)) {
      if (status === 0) {
        status = 400;
        reason = 'Bad Request - malformed Content-Length';
      }
    } else {
      const n = cl.length > 15 ? Number.MAX_SAFE_INTEGER : Number(cl);
      if (n > len - bodyStart) {
        if (status === 0) {
          status = 400;
          reason = 'Bad Request - Content-Length larger than message body';
        }
      } else bodyEnd = bodyStart + n;
    }
  } else if (options.stream === true && status === 0) {
    status = 400;
    reason = 'Bad Request - missing Content-Length';
  }
  const body = bodyStart >= bodyEnd ? EMPTY : data.subarray(bodyStart, bodyEnd);

  if (options.maxSize !== undefined && len > options.maxSize) {
    status = 513;
    reason = 'Message Too Large';
  }

  if (requestLine !== null) {
    const request: SipRequest = { kind: 'request', method: requestLine.method, uri: requestLine.uri, headers, body };
    if (status === 0) return { ok: true, message: request };
    const answerable =
      checked.topViaOk && (scan.seen & (H_FROM | H_TO | H_CALL_ID | H_CSEQ)) === (H_FROM | H_TO | H_CALL_ID | H_CSEQ);
    return failure(status, reason, answerable ? request : undefined);
  }
  if (status !== 0) return failure(status === 513 ? 513 : 400, reason.replace(/^Bad Request/, 'Bad Response'));
  const response: SipResponse = { kind: 'response', status: statusCode, reason: statusReason, headers, body };
  return { ok: true, message: response };
}

/** `SIP-Version SP Status-Code SP Reason-Phrase` (RFC 3261 §7.2); a string names the problem. */
function parseStatusLine(line: string): { status: number; reason: string } | string {
  const sp = line.indexOf(' ');
  if (sp < 0) return 'Bad Response - malformed status line';
  const v = checkVersion(line.slice(0, sp));
  if (v !== 0) return v === 505 ? 'Bad Response - unsupported SIP version' : 'Bad Response - malformed status line';
  const code = line.slice(sp + 1, sp + 4);
  const afterCode = line.charCodeAt(sp + 4);
  if (!isDigits(code) || code.length !== 3 || !(Number.isNaN(afterCode) || afterCode === 0x20)) {
    return 'Bad Response - malformed status code';
  }
  const status = Number(code);
  if (status < 100 || status > 699) return 'Bad Response - malformed status code';
  return { status, reason: line.slice(sp + 5) };
}

// ---------------------------------------------------------------------------
// Stream framing and keep-alives (RFC 5626 §4.4.1)

export type FramerEvent =
  | { type: 'message'; data: Buffer }
  | { type: 'keepalive' }
  | {
      type: 'error';
      reason: string;
      /** the transport must close the connection */
      fatal: boolean;
      /**
       * Header block of an oversize message when it was complete: `parseMessage(head, { maxSize: 0 })`
       * then gives 513 with the request to answer.
       */
      head?: Buffer;
    };

const CL_UNKNOWN = -1;
const CL_MALFORMED = -2;

/**
 * Content-Length of a header block (bytes start..end, end at the final CRLF
 * pair): the value, CL_UNKNOWN when absent, CL_MALFORMED when not a number or
 * when several headers disagree.
 */
function contentLengthOf(buf: Buffer, start: number, end: number): number {
  let result = CL_UNKNOWN;
  let p = buf.indexOf('\r\n', start);
  while (p >= 0 && p < end) {
    const lineStart = p + 2;
    const c = buf[lineStart]! | 0x20;
    let nameEnd = -1;
    if (c === 0x6c /* l */) {
      nameEnd = lineStart + 1;
    } else if (c === 0x63 /* c */ && end - lineStart >= 14) {
      if (buf.toString('latin1', lineStart, lineStart + 14).toLowerCase() === 'content-length') nameEnd = lineStart + 14;
    }
    let next = buf.indexOf('\r\n', lineStart);
    if (next < 0 || next > end) next = end;
    if (nameEnd >= 0) {
      let q = nameEnd;
      while (q < next && isSpTab(buf[q]!)) q++;
      if (q < next && buf[q] === 0x3a /* : */) {
        let value = buf.toString('latin1', q + 1, next);
        // folded continuation lines
        while (next < end && isSpTab(buf[next + 2] ?? 0)) {
          let after = buf.indexOf('\r\n', next + 2);
          if (after < 0 || after > end) after = end;
          value += ' ' + buf.toString('latin1', next + 2, after);
          next = after;
        }
        const v = trimLws(value);
        const n = isDigits(v) && v.length <= 15 ? Number(v) : CL_MALFORMED;
        if (n === CL_MALFORMED || (result !== CL_UNKNOWN && result !== n)) return CL_MALFORMED;
        result = n;
      }
    }
    p = next < end ? next : -1;
  }
  return result;
}

/**
 * Splits a TCP/TLS byte stream into SIP messages by Content-Length. CRLFCRLF
 * pings are reported as keepalive (answer with CRLF); single CRLFs before a
 * message are skipped. A message over the limit, or one whose length cannot
 * be known, is a fatal error: the stream cannot be resynchronised.
 */
export class StreamFramer {
  private readonly maxMessageSize: number;
  private buf: Buffer = EMPTY;
  /** bytes still missing for the message whose header block is known */
  private missing = 0;
  private chunks: Buffer[] = [];
  private chunkBytes = 0;
  /** where to resume looking for the end of the header block */
  private scanFrom = 0;
  private closed = false;

  constructor(options: { maxMessageSize: number }) {
    this.maxMessageSize = options.maxMessageSize;
  }

  /** Whether part of a message (not only CR/LF keep-alive bytes) waits for the rest. */
  get partial(): boolean {
    if (this.missing > 0 || this.chunkBytes > 0) return true;
    const b = this.buf;
    for (let i = 0; i < b.length; i++) if (b[i] !== CR && b[i] !== LF) return true;
    return false;
  }

  push(chunk: Buffer): FramerEvent[] {
    const events: FramerEvent[] = [];
    if (this.closed || chunk.length === 0) return events;
    if (this.missing > 0) {
      this.chunks.push(chunk);
      this.chunkBytes += chunk.length;
      if (this.chunkBytes < this.missing) return events;
      this.buf = Buffer.concat([this.buf, ...this.chunks]);
      this.chunks = [];
      this.chunkBytes = 0;
      this.missing = 0;
    } else {
      this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    }
    this.drain(events);
    return events;
  }

  private fatal(events: FramerEvent[], reason: string, head?: Buffer): void {
    events.push(head === undefined ? { type: 'error', reason, fatal: true } : { type: 'error', reason, fatal: true, head });
    this.closed = true;
    this.buf = EMPTY;
  }

  private drain(events: FramerEvent[]): void {
    const buf = this.buf;
    const len = buf.length;
    let off = 0;
    for (;;) {
      let wait = false;
      while (off < len && buf[off] === CR) {
        if (off + 1 >= len) {
          wait = true;
          break;
        }
        if (buf[off + 1] !== LF) break; // stray CR: framed (and rejected) as a message
        if (off + 2 >= len) {
          wait = true; // maybe the first half of a ping
          break;
        }
        if (buf[off + 2] === CR) {
          if (off + 3 >= len) {
            wait = true;
            break;
          }
          if (buf[off + 3] === LF) {
            events.push({ type: 'keepalive' });
            off += 4;
            continue;
          }
        }
        off += 2; // a lone CRLF (pong or leading CRLF)
      }
      if (wait || off >= len) break;
      const headEnd = buf.indexOf(HEADER_END, Math.max(off, this.scanFrom));
      if (headEnd < 0) {
        if (len - off > this.maxMessageSize) {
          this.fatal(events, 'Message Too Large');
          return;
        }
        this.scanFrom = Math.max(off, len - 3);
        break;
      }
      this.scanFrom = 0;
      const bodyStart = headEnd + 4;
      const cl = contentLengthOf(buf, off, headEnd + 2);
      if (cl === CL_UNKNOWN) {
        // required on streams; hand the header block over so that it can be answered 400
        events.push({ type: 'message', data: buf.subarray(off, bodyStart) });
        off = bodyStart;
        continue;
      }
      if (cl === CL_MALFORMED) {
        const head = buf.subarray(off, bodyStart);
        events.push({ type: 'message', data: head });
        this.fatal(events, 'Bad Request - malformed Content-Length');
        return;
      }
      const total = bodyStart - off + cl;
      if (total > this.maxMessageSize) {
        this.fatal(events, 'Message Too Large', buf.subarray(off, bodyStart));
        return;
      }
      if (len - off < total) {
        this.missing = total - (len - off);
        break;
      }
      events.push({ type: 'message', data: buf.subarray(off, off + total) });
      off += total;
    }
    this.buf = off >= len ? EMPTY : buf.subarray(off);
    if (this.scanFrom > 0) this.scanFrom -= off;
  }
}
