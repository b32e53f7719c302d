/**
 * Where a trunk URI points: an injectable function so the RFC 3263 resolver
 * (src/sip/resolve.ts) can replace this A/AAAA-only default.
 */
import { lookup as dnsLookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { Endpoint } from '../sip/message.js';
import { defaultPort, parseTrunkTarget } from './target.js';

export type TrunkResolver = (uri: string) => Promise<Endpoint[]>;

type Lookup = (host: string, options: { all: true }) => Promise<Array<{ address: string; family: number }>>;

/**
 * Numeric hosts stand for themselves; names go through the system resolver
 * (A/AAAA, no SRV); the port is the URI's or the transport's default.
 */
export function lookupResolver(lookup: Lookup = dnsLookup): TrunkResolver {
  return async (uri: string): Promise<Endpoint[]> => {
    const target = parseTrunkTarget(uri);
    if (target === null) throw new Error(`not a SIP URI: ${uri}`);
    const port = target.port ?? defaultPort(target.protocol);
    const host = target.host.startsWith('[') ? target.host.slice(1, -1) : target.host;
    if (isIP(host) !== 0) return [{ protocol: target.protocol, address: host, port }];
    const found = await lookup(host, { all: true });
    if (found.length === 0) throw new Error(`${host} has no address`);
    return found.map((a) => ({ protocol: target.protocol, address: a.address, port }));
  };
}
