import { Headers } from './headers.js';
import { responseToTag } from './response-tag.js';

export type TransportProtocol = 'udp' | 'tcp' | 'tls' | 'ws' | 'wss';

/** Where a message came from or goes to. */
export interface Endpoint {
  protocol: TransportProtocol;
  address: string;
  port: number;
}

export interface SipRequest {
  readonly kind: 'request';
  method: string;
  /** Request-URI as written on the wire; parse it with parseUri when needed. */
  uri: string;
  headers: Headers;
  body: Buffer;
}

export interface SipResponse {
  readonly kind: 'response';
  status: number;
  reason: string;
  headers: Headers;
  body: Buffer;
}

export type SipMessage = SipRequest | SipResponse;

/** A message as received, with where it came from. */
export interface Received<M extends SipMessage = SipMessage> {
  message: M;
  source: Endpoint;
  /** The local listener that received it. */
  local: Endpoint;
  /** Transport-level connection id for stream transports (reuse for responses, §18.2.2). */
  connectionId?: string;
}

export const EMPTY_BODY: Buffer = Buffer.alloc(0);

export function createRequest(method: string, uri: string, headers?: Headers, body?: Buffer): SipRequest {
  return { kind: 'request', method, uri, headers: headers ?? new Headers(), body: body ?? EMPTY_BODY };
}

/** Default reason phrases (RFC 3261 §21 and the event/publish RFCs). */
export const REASON_PHRASES: Readonly<Record<number, string>> = {
  100: 'Trying',
  180: 'Ringing',
  200: 'OK',
  202: 'Accepted',
  204: 'No Notification',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  406: 'Not Acceptable',
  407: 'Proxy Authentication Required',
  408: 'Request Timeout',
  412: 'Conditional Request Failed',
  413: 'Request Entity Too Large',
  415: 'Unsupported Media Type',
  416: 'Unsupported URI Scheme',
  420: 'Bad Extension',
  423: 'Interval Too Brief',
  480: 'Temporarily Unavailable',
  481: 'Call/Transaction Does Not Exist',
  482: 'Loop Detected',
  483: 'Too Many Hops',
  489: 'Bad Event',
  500: 'Server Internal Error',
  501: 'Not Implemented',
  503: 'Service Unavailable',
  505: 'Version Not Supported',
  513: 'Message Too Large',
};

export function reasonPhrase(status: number): string {
  return REASON_PHRASES[status] ?? (status < 300 ? 'OK' : 'Error');
}

/**
 * Build a response to a request. RFC 3261 §8.2.6.2: From, Call-ID, CSeq and
 * Via are copied; To is copied and, when the request's To has no tag and the
 * response is not a 100, gets `toTag` or else the tag derived from the request
 * (response-tag.ts: the same for every retransmission). `toTag: false` adds
 * none: only for the locally made answers to our own client transactions.
 */
/** A failure made here when no response came (resolution failed, the send failed): no headers, no body. */
export function localFailure(status: number, reason: string): SipResponse {
  return { kind: 'response', status, reason, headers: new Headers(), body: EMPTY_BODY };
}

export function createResponse(
  request: SipRequest,
  status: number,
  reason?: string,
  options: { toTag?: string | false; body?: Buffer; contentType?: string } = {},
): SipResponse {
  const headers = new Headers();
  for (const via of request.headers.getAll('via')) headers.append('via', via);
  const from = request.headers.get('from');
  if (from !== undefined) headers.append('from', from);
  let to = request.headers.get('to');
  if (to !== undefined) {
    if (status > 100 && options.toTag !== false && !/;\s*tag\s*=/i.test(stripUriPart(to))) {
      to = `${to};tag=${options.toTag ?? responseToTag(request.headers)}`;
    }
    headers.append('to', to);
  }
  const callId = request.headers.get('call-id');
  if (callId !== undefined) headers.append('call-id', callId);
  const cseq = request.headers.get('cseq');
  if (cseq !== undefined) headers.append('cseq', cseq);
  const body = options.body ?? EMPTY_BODY;
  if (options.contentType !== undefined && body.length > 0) headers.append('content-type', options.contentType);
  return { kind: 'response', status, reason: reason ?? reasonPhrase(status), headers, body };
}

/**
 * The part of a name-addr header value after its URI, so that a `tag=` inside
 * a bracketed URI is not mistaken for the header's tag parameter.
 */
function stripUriPart(value: string): string {
  const close = value.lastIndexOf('>');
  return close >= 0 ? value.slice(close + 1) : value;
}
