import type { Via } from '../header-values.js';
import type { Endpoint, SipRequest } from '../message.js';

/** A parse failure that may still be answerable. */
export interface ParseFailure {
  status: number;
  reason: string;
  request?: SipRequest;
}

/** Where a response goes (RFC 3261 §18.2.2). */
export interface ResponseTarget {
  destination: Endpoint;
  connectionId?: string;
}

const DEFAULT_SIP_PORT = 5060;
const DEFAULT_SIPS_PORT = 5061;

/** RFC 3261 §18.2.2 (via RFC 3263 §5): a sent-by without port means 5061 for TLS, 5060 otherwise. */
function viaDefaultPort(via: Via): number {
  return via.protocol === 'TLS' || via.protocol === 'WSS' ? DEFAULT_SIPS_PORT : DEFAULT_SIP_PORT;
}

/**
 * RFC 3261 §18.2.2 response destination for a request that arrived from
 * `source`, given its top Via (with received/rport already filled in).
 */
export function responseTarget(via: Via, source: Endpoint, connectionId: string | undefined): ResponseTarget {
  const address = via.received ?? via.host;
  if (source.protocol !== 'udp') {
    // reliable: the same connection while open, else a new one to received + sent-by port
    const target: ResponseTarget = {
      destination: { protocol: source.protocol, address, port: via.port ?? viaDefaultPort(via) },
    };
    if (connectionId !== undefined) target.connectionId = connectionId;
    return target;
  }
  const maddr = via.params.get('maddr');
  if (maddr !== undefined && maddr !== null && maddr.length > 0) {
    return { destination: { protocol: 'udp', address: maddr, port: via.port ?? DEFAULT_SIP_PORT } };
  }
  // RFC 3581 §4: with rport, back to the source port
  const port = typeof via.rport === 'number' ? via.rport : (via.port ?? DEFAULT_SIP_PORT);
  return { destination: { protocol: 'udp', address, port } };
}
