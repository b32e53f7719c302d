/**
 * A cheap look at a received message before the full parse: is it a
 * response, which method, does To carry a tag, and the raw values of the
 * headers a stateless answer copies (Via, From, To, Call-ID, CSeq; RFC 3261
 * §8.2.6.2). Used by the ingress to sort and, under overload, to answer 503
 * without building a message. Anything unusual (folded lines, no header end,
 * a missing mandatory header) gives null and the full parser decides.
 */
import { tagOf } from './header-values.js';

export interface RawScan {
  kind: 'request' | 'response';
  /** request method as sent (case kept) */
  method: string;
  /** To carries a tag: an in-dialog request */
  toTagged: boolean;
  /** PUBLISH refreshing or modifying a publication (SIP-If-Match, RFC 3903 §4.3) */
  conditional: boolean;
  /** raw Via values in order (one entry per header line; a line may hold several) */
  via: string[];
  from: string;
  to: string;
  callId: string;
  cseq: string;
}

/** Header names that matter here, lower case, compact forms included (RFC 3261 §7.3.3). */
const enum H {
  Other,
  Via,
  From,
  To,
  CallId,
  CSeq,
  SipIfMatch,
}

function headerKind(name: string): H {
  switch (name.length) {
    case 1:
      switch (name) {
        case 'v':
          return H.Via;
        case 'f':
          return H.From;
        case 't':
          return H.To;
        case 'i':
          return H.CallId;
        default:
          return H.Other;
      }
    case 2:
      return name === 'to' ? H.To : H.Other;
    case 3:
      return name === 'via' ? H.Via : H.Other;
    case 4:
      return name === 'from' ? H.From : name === 'cseq' ? H.CSeq : H.Other;
    case 7:
      return name === 'call-id' ? H.CallId : H.Other;
    case 12:
      return name === 'sip-if-match' ? H.SipIfMatch : H.Other;
    default:
      return H.Other;
  }
}

/** Scan the header block of one message; null when the full parser should judge it. */
export function scanRaw(data: Buffer): RawScan | null {
  // The header block only; latin1 maps bytes to characters one to one (answers copy them back exactly).
  let end = data.indexOf('\r\n\r\n', 0, 'latin1');
  if (end < 0) {
    end = data.indexOf('\n\n', 0, 'latin1');
    if (end < 0) return null;
  }
  const text = data.toString('latin1', 0, end);
  let lineEnd = text.indexOf('\n');
  const startLine = (lineEnd < 0 ? text : text.slice(0, lineEnd)).trimEnd();
  let kind: 'request' | 'response';
  let method = '';
  if (startLine.startsWith('SIP/2.0 ')) kind = 'response';
  else {
    const sp = startLine.indexOf(' ');
    if (sp <= 0 || !startLine.endsWith(' SIP/2.0')) return null;
    kind = 'request';
    method = startLine.slice(0, sp);
  }
  const via: string[] = [];
  let from: string | undefined;
  let to: string | undefined;
  let callId: string | undefined;
  let cseq: string | undefined;
  let conditional = false;
  let pos = lineEnd < 0 ? text.length : lineEnd + 1;
  while (pos < text.length) {
    lineEnd = text.indexOf('\n', pos);
    if (lineEnd < 0) lineEnd = text.length;
    const first = text.charCodeAt(pos);
    if (first === 0x20 || first === 0x09) return null; // folded header: the full parser unfolds
    const colon = text.indexOf(':', pos);
    if (colon < 0 || colon > lineEnd) return null;
    const name = text.slice(pos, colon).trim().toLowerCase();
    const k = headerKind(name);
    if (k !== H.Other) {
      let valueEnd = lineEnd;
      if (text.charCodeAt(valueEnd - 1) === 0x0d) valueEnd--;
      const value = text.slice(colon + 1, valueEnd).trim();
      switch (k) {
        case H.Via:
          via.push(value);
          break;
        case H.From:
          if (from !== undefined) return null;
          from = value;
          break;
        case H.To:
          if (to !== undefined) return null;
          to = value;
          break;
        case H.CallId:
          if (callId !== undefined) return null;
          callId = value;
          break;
        case H.CSeq:
          if (cseq !== undefined) return null;
          cseq = value;
          break;
        case H.SipIfMatch:
          conditional = true;
          break;
      }
    }
    pos = lineEnd + 1;
  }
  if (via.length === 0 || from === undefined || to === undefined || callId === undefined || cseq === undefined) return null;
  return { kind, method, toTagged: tagOf(to) !== undefined, conditional, via, from, to, callId, cseq };
}
