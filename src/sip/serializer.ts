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

/** Start line and headers, Content-Length last, and the empty line: everything before the body. */
function headOf(m: SipMessage): string {
  let head =
    m.kind === 'request'
      ? `${clean(m.method)} ${clean(m.uri)} SIP/2.0\r\n`
      : `SIP/2.0 ${m.status} ${clean(m.reason)}\r\n`;
  for (const field of m.headers) {
    if (field.name === 'content-length') continue;
    head += wireName(field.name) + ': ' + clean(field.value) + '\r\n';
  }
  return head + 'Content-Length: ' + m.body.length + '\r\n\r\n';
}

/** UTF-8 takes at most 3 bytes per UTF-16 code unit. */
const MAX_UTF8_PER_UNIT = 3;

export function serializeMessage(m: SipMessage): Buffer {
  const head = headOf(m);
  const body = m.body;
  const headLength = Buffer.byteLength(head, 'utf8');
  // Not from the shared 8 KB pool: transactions keep serialized messages for
  // retransmission (Timer J holds a response 32 s), and a pooled slice would
  // pin its whole slab, several times the message's own size.
  const out = Buffer.allocUnsafeSlow(headLength + body.length);
  out.write(head, 0, headLength, 'utf8');
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
  const head = headOf(m);
  const body = m.body;
  // room for the worst case spares the length pass over the head
  const room = space.reserve(MAX_UTF8_PER_UNIT * head.length + body.length);
  if (room === undefined) {
    const own = serializeMessage(m);
    return { buffer: own, start: 0, end: own.length };
  }
  const { buffer, start } = room;
  const headEnd = start + buffer.write(head, start, 'utf8');
  body.copy(buffer, headEnd);
  const end = headEnd + body.length;
  space.commit(end);
  return { buffer, start, end };
}
