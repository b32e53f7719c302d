/**
 * A trunk's address or outbound proxy as configured: a SIP URI naming host,
 * optional port and transport.
 */
import type { TransportProtocol } from '../sip/message.js';
import { parseUri } from '../sip/uri.js';

export type TrunkTransport = Extract<TransportProtocol, 'udp' | 'tcp' | 'tls'>;

export interface TrunkTarget {
  /** lower-case; IPv6 in brackets */
  host: string;
  /** absent: the default port of the transport (or SRV, with an RFC 3263 resolver) */
  port?: number;
  protocol: TrunkTransport;
  /** whether the transport was written explicitly (;transport= or sips:) */
  explicitTransport: boolean;
}

/** Parse `sip:host[:port][;transport=udp|tcp|tls]` or `sips:host[:port]`; null when it is not one. */
export function parseTrunkTarget(text: string): TrunkTarget | null {
  const uri = parseUri(text.trim());
  if (uri === null || (uri.scheme !== 'sip' && uri.scheme !== 'sips') || uri.host.length === 0) return null;
  if (uri.port === 0) return null;
  const t = uri.params.get('transport');
  let protocol: TrunkTransport;
  if (t === undefined || t === null) protocol = uri.scheme === 'sips' ? 'tls' : 'udp';
  else {
    const lower = t.toLowerCase();
    if (lower !== 'udp' && lower !== 'tcp' && lower !== 'tls') return null;
    // RFC 3261 §19.1: sips means TLS on every hop
    if (uri.scheme === 'sips' && lower === 'udp') return null;
    protocol = uri.scheme === 'sips' ? 'tls' : lower;
  }
  const target: TrunkTarget = { host: uri.host, protocol, explicitTransport: t !== undefined || uri.scheme === 'sips' };
  if (uri.port !== undefined) target.port = uri.port;
  return target;
}

export function defaultPort(protocol: TrunkTransport): number {
  return protocol === 'tls' ? 5061 : 5060;
}
