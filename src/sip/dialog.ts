/**
 * One dialog model for both sides of a SIP dialog (RFC 3261 §12): the notifier
 * (UAS of a SUBSCRIBE) and the upstream watcher (UAC of a SUBSCRIBE, and UAS
 * of a NOTIFY that comes before the 2xx). Its construction, the requests built
 * in it (route set, loose and strict routing, next hop, our Contact), its CSeq
 * rules, the responses that end a usage of it, and the CSeq jump after a
 * restart. Knows nothing of presence.
 *
 * Values taken from a message may be slices of its header block; a holder that
 * outlives the message passes `copy` (e.g. the notifier's `detach`) so that the
 * message is not kept alive.
 */
import { isIP } from 'node:net';
import { tagOf } from './header-values.js';
import type { Headers } from './headers.js';
import type { Endpoint, SipRequest, SipResponse, TransportProtocol } from './message.js';
import { hostForSip, isWildcard } from './transport/address.js';
import { formatUri, parseNameAddr, parseUri, type SipUri } from './uri.js';

/** A dialog as its UAC knows it before an answer made it (the request's own Call-ID, From tag and CSeq). */
export interface EarlyDialog {
  readonly callId: string;
  readonly localTag: string;
  /** CSeq of our last request in the dialog. */
  localCSeq: number;
  /** CSeq of the far end's last request in the dialog; -1 while it sent none (RFC 3261 §12.1.2: empty). */
  remoteCSeq: number;
}

/** An established dialog (RFC 3261 §12): both tags, the remote target and the route set. */
export interface Dialog extends EarlyDialog {
  readonly remoteTag: string;
  /** The far end's Contact URI; replaced by a target refresh (RFC 3261 §12.2). */
  remoteTarget: string;
  /** Route headers of our in-dialog requests, in order. */
  readonly routeSet: readonly string[];
}

type Copy = (s: string) => string;
const same: Copy = (s) => s;
const NO_ROUTES: readonly string[] = Object.freeze([]);

/** A dialog's identity before the answer: a fresh CSeq space, nothing received yet. */
export function earlyDialog(callId: string, localTag: string): EarlyDialog {
  return { callId, localTag, localCSeq: 0, remoteCSeq: -1 };
}

/** The remote target a message sets: its one Contact's URI; undefined without exactly one that parses. */
export function remoteTargetOf(contacts: readonly string[]): string | undefined {
  if (contacts.length !== 1) return undefined;
  const c = parseNameAddr(contacts[0]!);
  return c === null ? undefined : formatUri(c.uri);
}

function routeSetOf(headers: Headers, reversed: boolean, copy: Copy): readonly string[] {
  const rr = headers.getAll('record-route');
  if (rr.length === 0) return NO_ROUTES;
  const routes = copy === same ? rr : rr.map(copy);
  return reversed ? routes.reverse() : routes;
}

/**
 * RFC 3261 §12.1.1: the dialog a UAS makes when it answers `request` with a
 * 2xx carrying `localTag`: the route set is the Record-Route list in order,
 * the remote target its Contact, the remote CSeq its CSeq. Undefined when the
 * request has not exactly one valid Contact (the caller answers 400).
 */
export function uasDialog(request: SipRequest, localTag: string, remoteCSeq: number, copy: Copy = same): Dialog | undefined {
  const h = request.headers;
  const remoteTarget = remoteTargetOf(h.getAll('contact'));
  if (remoteTarget === undefined) return undefined;
  const from = h.get('from');
  return {
    callId: copy(h.get('call-id') ?? ''),
    localTag,
    remoteTag: copy((from === undefined ? undefined : tagOf(from)) ?? ''),
    remoteTarget: copy(remoteTarget),
    routeSet: routeSetOf(h, false, copy),
    localCSeq: 0,
    remoteCSeq,
  };
}

/**
 * RFC 3261 §12.1.2: the dialog a 2xx to our request makes: the remote tag
 * from its To, the route set the Record-Route list reversed, the remote
 * target its Contact; our CSeqs carry on. Undefined when it has no To tag
 * or not exactly one valid Contact.
 */
export function uacDialog(early: EarlyDialog, response: SipResponse, copy: Copy = same): Dialog | undefined {
  const to = response.headers.get('to');
  const remoteTag = to === undefined ? undefined : tagOf(to);
  if (remoteTag === undefined) return undefined;
  const remoteTarget = remoteTargetOf(response.headers.getAll('contact'));
  if (remoteTarget === undefined) return undefined;
  return established(early, copy(remoteTag), copy(remoteTarget), routeSetOf(response.headers, true, copy));
}

/** The early dialog made whole by its answer; the CSeqs carry on. */
function established(early: EarlyDialog, remoteTag: string, remoteTarget: string, routeSet: readonly string[]): Dialog {
  return { callId: early.callId, localTag: early.localTag, remoteTag, remoteTarget, routeSet, localCSeq: early.localCSeq, remoteCSeq: early.remoteCSeq };
}

/**
 * RFC 6665 §4.1.2.4: a NOTIFY that comes before the 2xx to our SUBSCRIBE
 * makes the dialog; we are the UAS of that NOTIFY, so as in §12.1.1 the route
 * set is its Record-Route list in order and the remote tag its From tag.
 * Undefined without exactly one valid Contact.
 */
export function notifyDialog(early: EarlyDialog, notify: SipRequest, fromTag: string, copy: Copy = same): Dialog | undefined {
  const remoteTarget = remoteTargetOf(notify.headers.getAll('contact'));
  if (remoteTarget === undefined) return undefined;
  return established(early, copy(fromTag), copy(remoteTarget), routeSetOf(notify.headers, false, copy));
}

/** A target refresh (RFC 3261 §12.2): the message's one valid Contact replaces the remote target. True when it changed. */
export function refreshTarget(dialog: { remoteTarget: string }, contacts: readonly string[], copy: Copy = same): boolean {
  const target = remoteTargetOf(contacts);
  if (target === undefined || target === dialog.remoteTarget) return false;
  dialog.remoteTarget = copy(target);
  return true;
}

/** True when the established side of `d` is there (an EarlyDialog becomes a Dialog when answered). */
export function isEstablished(d: EarlyDialog | undefined): d is Dialog {
  return d !== undefined && (d as Partial<Dialog>).remoteTarget !== undefined;
}

// ---------------------------------------------------------------------------
// CSeq

/** RFC 3261 §12.2.1.1: each request in the dialog carries the last local CSeq plus one. */
export function nextLocalCSeq(d: EarlyDialog): number {
  return ++d.localCSeq;
}

/**
 * RFC 3261 §12.2.2: a request whose CSeq is lower than the remote CSeq is out
 * of order (answered 500); otherwise its CSeq becomes the remote CSeq.
 * False (and nothing changed) when out of order.
 */
export function acceptRemoteCSeq(d: EarlyDialog, seq: number): boolean {
  if (seq < d.remoteCSeq) return false;
  d.remoteCSeq = seq;
  return true;
}

/** True when `seq` is not lower than the dialog's remote CSeq (the check of acceptRemoteCSeq, without taking it). */
export function remoteCSeqInOrder(d: EarlyDialog, seq: number): boolean {
  return seq >= d.remoteCSeq;
}

/**
 * How far a restored dialog's local CSeq jumps ahead of the saved one: it is
 * not saved per request, so some may have gone out unsaved before a restart.
 * RFC 3261 §12.2.1.1 only needs it to increase.
 */
export const RESTORE_CSEQ_MARGIN = 10_000;

/** The local CSeq to carry on with after a restart, from the saved one. */
export function restoredLocalCSeq(saved: number): number {
  return saved + RESTORE_CSEQ_MARGIN;
}

// ---------------------------------------------------------------------------
// The end of a dialog usage

/**
 * Final responses to a request in the dialog after which the usage is gone
 * (RFC 5057 §5.1: the ones that destroy the usage or the whole dialog; RFC
 * 6665 §4.1.2.2 / §4.2.2 for SUBSCRIBE and NOTIFY): 481, 408 (also a local
 * Timer F timeout) and 503 (also a locally made transport failure) among them.
 * Any other failure (400, 403, 415, 500, ...) leaves the usage in place.
 */
export const ENDS_DIALOG_USAGE: ReadonlySet<number> = new Set([
  404, 405, 408, 410, 416, 480, 481, 482, 483, 484, 485, 489, 501, 502, 503, 604,
]);

// ---------------------------------------------------------------------------
// Routing

/**
 * RFC 3261 §12.2.1.1: the Request-URI and Route headers of a request in the
 * dialog. With a loose router first (;lr), or no route set, the remote target
 * is the Request-URI and the route set the Route headers; a strict router
 * first becomes the Request-URI, the rest of the route set and then the
 * remote target go in Route. Returns the Request-URI.
 */
export function routeRequest(remoteTarget: string, routeSet: readonly string[], headers: Headers): string {
  if (routeSet.length === 0) return remoteTarget;
  const first = parseNameAddr(routeSet[0]!);
  if (first !== null && !first.uri.params.has('lr')) {
    for (let i = 1; i < routeSet.length; i++) headers.append('route', routeSet[i]!);
    headers.append('route', `<${remoteTarget}>`);
    return formatUri(first.uri);
  }
  for (const r of routeSet) headers.append('route', r);
  return remoteTarget;
}

/** Where a request in the dialog goes first: the first route, else the remote target (RFC 3261 §12.2.1.1, §8.1.2). */
export function firstHopUri(remoteTarget: string, routeSet: readonly string[]): SipUri | null {
  if (routeSet.length > 0) return parseNameAddr(routeSet[0]!)?.uri ?? null;
  return parseUri(remoteTarget);
}

const PROTOCOLS: ReadonlySet<string> = new Set(['udp', 'tcp', 'tls', 'ws', 'wss']);

/** Where a request to a URI goes: host (maybe a name needing DNS), port and transport. */
export interface NextHop {
  host: string;
  /** True when `host` is an IP literal (no DNS needed). */
  literal: boolean;
  port: number;
  protocol: TransportProtocol;
}

/**
 * Next hop for a URI without RFC 3263 SRV/NAPTR: maddr or host, the port or
 * the scheme default, the transport param or `fallback` (RFC 3261 §18.1.1).
 */
export function nextHopOf(uri: SipUri, fallback: TransportProtocol): NextHop {
  const maddr = uri.params.get('maddr');
  const rawHost = typeof maddr === 'string' && maddr.length > 0 ? maddr : uri.host;
  const host = rawHost.startsWith('[') && rawHost.endsWith(']') ? rawHost.slice(1, -1) : rawHost;
  const tp = uri.params.get('transport');
  let protocol: TransportProtocol = fallback;
  if (typeof tp === 'string' && PROTOCOLS.has(tp.toLowerCase())) protocol = tp.toLowerCase() as TransportProtocol;
  else if (uri.scheme === 'sips') protocol = 'tls';
  const port = uri.port ?? (protocol === 'tls' || protocol === 'wss' ? 5061 : 5060);
  return { host, literal: isIP(host) !== 0, port, protocol };
}

/** The next hop of a request in the dialog when it needs no DNS (an IP literal); undefined otherwise. */
export function literalHop(remoteTarget: string, routeSet: readonly string[], fallback: TransportProtocol): Endpoint | undefined {
  const uri = firstHopUri(remoteTarget, routeSet);
  if (uri === null) return undefined;
  const hop = nextHopOf(uri, fallback);
  return hop.literal ? { protocol: hop.protocol, address: hop.host, port: hop.port } : undefined;
}

// ---------------------------------------------------------------------------
// Our Contact

/** Contact value naming us on `endpoint` (`host` overrides the bound address; a wildcard bind says 127.0.0.1). */
export function contactValue(endpoint: Endpoint, host?: string): string {
  const h = host ?? (isWildcard(endpoint.address) ? '127.0.0.1' : endpoint.address);
  const transport = endpoint.protocol === 'udp' ? '' : `;transport=${endpoint.protocol}`;
  return `<sip:${hostForSip(h)}:${endpoint.port}${transport}>`;
}

/** What the stack tells of its own endpoints (structural: SipStack and the SIMPLE side's RequestSender fit). */
export interface LocalEndpoints {
  localEndpoint(protocol: TransportProtocol): Endpoint | undefined;
  advertisedEndpoint?(protocol: TransportProtocol): Endpoint | undefined;
}

/**
 * Our Contact for requests and 2xx answers on a transport (RFC 3261 §12.1.1,
 * §12.1.2: it becomes the far end's remote target): the stack's advertised,
 * else bound, endpoint for it; undefined when it has none.
 */
export function ourContact(stack: LocalEndpoints, protocol: TransportProtocol, host?: string): string | undefined {
  const ep = stack.advertisedEndpoint?.(protocol) ?? stack.localEndpoint(protocol);
  return ep === undefined ? undefined : contactValue(ep, host);
}
