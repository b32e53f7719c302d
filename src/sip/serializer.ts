/**
 * SIP message serializer. Content-Length is always written last among the
 * headers and always equals the body's byte length; the body is appended
 * untouched. CR and LF inside start-line parts or header values (which could
 * only come from a bug or from untrusted text copied into a header) are
 * replaced by spaces so that nothing can inject a header.
 */
import { wireHeaderName } from './headers.js';
import type { SipMessage } from './message.js';

const CRLF_RE = /[\r\n]/g;

function clean(s: string): string {
  return s.indexOf('\r') < 0 && s.indexOf('\n') < 0 ? s : s.replace(CRLF_RE, ' ');
}

/** Bounded cache of wire spellings: header names come from peers too. */
const wireNames = new Map<string, string>();
const WIRE_CACHE_MAX = 512;

function wireName(canonical: string): string {
  let w = wireNames.get(canonical);
  if (w === undefined) {
    w = clean(wireHeaderName(canonical));
    if (wireNames.size < WIRE_CACHE_MAX) wireNames.set(canonical, w);
  }
  return w;
}

/** UTF-8 takes at most 3 bytes per UTF-16 code unit. */
const MAX_UTF8_PER_UNIT = 3;
/** bytes of the fixed text of a head besides its strings: start line, ": " and CRLF per header, Content-Length */
const FIXED_HEAD_BYTES = 64;

/**
 * An upper bound of the head's bytes (start line, headers, Content-Length,
 * the empty line), from the lengths of its strings: no string is built.
 */
function headBound(m: SipMessage): number {
  let units = m.kind === 'request' ? m.method.length + m.uri.length : m.reason.length;
  let fields = 0;
  for (const field of m.headers) {
    units += wireName(field.name).length + field.value.length;
    fields++;
  }
  return MAX_UTF8_PER_UNIT * units + 4 * fields + FIXED_HEAD_BYTES;
}

/**
 * Write `s` at `pos` (room for MAX_UTF8_PER_UNIT bytes a unit is there), CR
 * and LF as spaces; returns the end. ASCII byte by byte (no string is made);
 * anything else through the UTF-8 encoder.
 */
function put(buf: Buffer, pos: number, s: string): number {
  const n = s.length;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80) return pos - i + buf.write(clean(s), pos - i, 'utf8');
    buf[pos++] = c === 0x0d || c === 0x0a ? 0x20 : c;
  }
  return pos;
}

function putCrlf(buf: Buffer, pos: number): number {
  buf[pos] = 0x0d;
  buf[pos + 1] = 0x0a;
  return pos + 2;
}

/** A non-negative integer in decimal. */
function putInt(buf: Buffer, pos: number, v: number): number {
  if (v < 10) {
    buf[pos] = 0x30 + v;
    return pos + 1;
  }
  return put(buf, pos, String(v));
}

/** Start line and headers, Content-Length last, and the empty line, at `pos` of `buf`; returns the end. */
function putHead(m: SipMessage, buf: Buffer, pos: number): number {
  if (m.kind === 'request') {
    pos = put(buf, pos, m.method);
    buf[pos++] = 0x20;
    pos = put(buf, pos, m.uri);
    pos = put(buf, pos, ' SIP/2.0');
  } else {
    pos = put(buf, pos, 'SIP/2.0 ');
    pos = putInt(buf, pos, m.status);
    buf[pos++] = 0x20;
    pos = put(buf, pos, m.reason);
  }
  pos = putCrlf(buf, pos);
  for (const field of m.headers) {
    if (field.name === 'content-length') continue;
    pos = put(buf, pos, wireName(field.name));
    buf[pos++] = 0x3a;
    buf[pos++] = 0x20;
    pos = put(buf, pos, field.value);
    pos = putCrlf(buf, pos);
  }
  pos = put(buf, pos, 'Content-Length: ');
  pos = putInt(buf, pos, m.body.length);
  pos = putCrlf(buf, pos);
  return putCrlf(buf, pos);
}

/** Where messages that get a buffer of their own are written first, then copied once at their exact length. */
let scratch = Buffer.allocUnsafeSlow(16 * 1024);

export function serializeMessage(m: SipMessage): Buffer {
  const bound = headBound(m);
  if (scratch.length < bound) scratch = Buffer.allocUnsafeSlow(bound);
  const headLength = putHead(m, scratch, 0);
  const body = m.body;
  // Not from the shared 8 KB pool: transactions keep serialized messages for
  // retransmission (Timer J holds a response 32 s), and a pooled slice would
  // pin its whole slab, several times the message's own size.
  const out = Buffer.allocUnsafeSlow(headLength + body.length);
  scratch.copy(out, 0, 0, headLength);
  body.copy(out, headLength);
  return out;
}

/** Where serializeMessageInto may write: at least `maxLength` free bytes from `start` of `buffer`. */
export interface ByteSpace {
  /** undefined: too large for the space (the message gets a buffer of its own) */
  reserve(maxLength: number): { buffer: Buffer; start: number } | undefined;
  /** the reserved bytes [start, end) are used */
  commit(end: number): void;
}

/** Bytes [start, end) of `buffer`. */
export interface ByteRange {
  readonly buffer: Buffer;
  readonly start: number;
  readonly end: number;
}

/**
 * Serialize straight into `space` (no buffer of the message's own, no copy):
 * for bytes that are kept, such as a final response held for Timer J. The
 * range is in the space's buffer, or a buffer of its own when the space has
 * no room that large.
 */
export function serializeMessageInto(m: SipMessage, space: ByteSpace): ByteRange {
  const body = m.body;
  const room = space.reserve(headBound(m) + body.length);
  if (room === undefined) {
    const own = serializeMessage(m);
    return { buffer: own, start: 0, end: own.length };
  }
  const { buffer, start } = room;
  const headEnd = putHead(m, buffer, start);
  body.copy(buffer, headEnd);
  const end = headEnd + body.length;
  space.commit(end);
  return { buffer, start, end };
}
