/**
 * Where a trunk URI points. The default is RFC 3263 (src/sip/resolve.ts):
 * SRV when the URI has no port, then A/AAAA; host names are looked up the way
 * the system does (hosts file included). lookupResolver is the plain A/AAAA one.
 */
import { lookup as dnsLookup, Resolver } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { Endpoint } from '../sip/message.js';
import { sipResolver, type DnsLike, type SipResolveOptions } from '../sip/resolve.js';
import { defaultPort, parseTrunkTarget } from './target.js';

export type TrunkResolver = (uri: string) => Promise<Endpoint[]>;

type Lookup = (host: string, options: { all: true; family?: 4 | 6 }) => Promise<Array<{ address: string; family: number }>>;

/**
 * DNS for RFC 3263: SRV from the DNS servers, addresses from the system's
 * lookup (so /etc/hosts names and container service names resolve too).
 */
export function systemDns(lookup: Lookup = dnsLookup, srv: Pick<DnsLike, 'resolveSrv'> = new Resolver()): DnsLike {
  const family = async (name: string, f: 4 | 6): Promise<string[]> => {
    const found = await lookup(name, { all: true, family: f });
    return found.filter((a) => a.family === f).map((a) => a.address);
  };
  return {
    resolveSrv: (name) => srv.resolveSrv(name),
    resolve4: (name) => family(name, 4),
    resolve6: (name) => family(name, 6),
  };
}

/**
 * The trunks' default resolver: RFC 3263 without NAPTR (numeric host as is;
 * a port or ws means A/AAAA; otherwise SRV _sip._udp/_sip._tcp/_sips._tcp,
 * then A/AAAA with the transport's default port). Rejects when nothing was found.
 */
export function rfc3263Resolver(options: SipResolveOptions = {}): TrunkResolver {
  return sipResolver({ ...options, dns: options.dns ?? systemDns() });
}

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
