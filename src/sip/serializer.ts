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

export function serializeMessage(m: SipMessage): Buffer {
  let head =
    m.kind === 'request'
      ? `${clean(m.method)} ${clean(m.uri)} SIP/2.0\r\n`
      : `SIP/2.0 ${m.status} ${clean(m.reason)}\r\n`;
  for (const field of m.headers) {
    if (field.name === 'content-length') continue;
    head += wireName(field.name) + ': ' + clean(field.value) + '\r\n';
  }
  const body = m.body;
  head += 'Content-Length: ' + body.length + '\r\n\r\n';
  const headLength = Buffer.byteLength(head, 'utf8');
  // Not from the shared 8 KB pool: transactions keep serialized messages for
  // retransmission (Timer J holds a response 32 s), and a pooled slice would
  // pin its whole slab, several times the message's own size.
  const out = Buffer.allocUnsafeSlow(headLength + body.length);
  out.write(head, 0, headLength, 'utf8');
  body.copy(out, headLength);
  return out;
}
