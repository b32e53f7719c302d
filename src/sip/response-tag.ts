/**
 * The To tag of a response to a request outside a dialog. RFC 3261 §8.2.6.2:
 * the UAS MUST add a tag to the To of a response whose request had none, and
 * the tag must be the same for every retransmission of the request; §8.2.7
 * asks a stateless UAS to make it deterministically for the same reason.
 *
 * So the tag is derived from the request's transaction identity (§17.2.3: top
 * Via branch and sent-by, with Call-ID, From tag and CSeq so that RFC 2543
 * style requests without a magic-cookie branch are covered too), keyed with a
 * per-process secret: a retransmission gets the same tag whichever layer
 * answers it (the transaction, the UAS core, a stateless 400/482/503), and
 * nobody can predict another request's tag.
 */
import { hash, randomBytes } from 'node:crypto';

/** Per-process secret prefixed to the identity (one-shot SHA-256: ~0.6 µs, an HMAC object ~2.5 µs). */
const SECRET = randomBytes(32).toString('hex');

function field(value: string | undefined): string {
  return value === undefined ? '' : value.trim();
}

/** The From tag parameter, or '' (kept local: header-values imports message.ts users). */
function fromTagOf(from: string | undefined): string {
  if (from === undefined) return '';
  const close = from.lastIndexOf('>');
  const params = close >= 0 ? from.slice(close + 1) : from;
  const m = /;\s*tag\s*=\s*([^;\s,]+)/i.exec(params);
  return m === null ? '' : m[1]!;
}

/**
 * Sent-by and branch of the top Via, without received/rport: the transaction
 * layer stamps those on arrival, and the tag must not depend on whether it did.
 */
function viaIdentity(via: string | undefined): string {
  if (via === undefined) return '';
  const first = via.split(',')[0]!;
  const semi = first.indexOf(';');
  const sentBy = (semi < 0 ? first : first.slice(0, semi)).replace(/\s+/g, ' ').trim();
  const branch = semi < 0 ? '' : (/;\s*branch\s*=\s*([^;\s]+)/i.exec(first.slice(semi))?.[1] ?? '');
  return `${sentBy}\u0000${branch}`;
}

/** What names a request's transaction: the headers a retransmission repeats unchanged. */
export interface TaggedRequestHeaders {
  get(name: string): string | undefined;
  getAll(name: string): string[];
}

/** A 64-bit hex To tag, the same for every copy of the same request. */
export function responseToTag(headers: TaggedRequestHeaders): string {
  const identity =
    viaIdentity(headers.getAll('via')[0]) +
    '\u0000' +
    field(headers.get('call-id')) +
    '\u0000' +
    fromTagOf(headers.get('from')) +
    '\u0000' +
    field(headers.get('cseq'));
  return hash('sha256', SECRET + identity, 'hex').slice(0, 16);
}
