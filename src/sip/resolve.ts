/**
 * RFC 3263 server location for a SIP or SIPS URI, without NAPTR: a numeric
 * host stands for itself, an explicit port means A/AAAA, otherwise SRV
 * (_sips._tcp, _sip._tcp, _sip._udp) and then A/AAAA with the default port.
 */
import { Resolver } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { Endpoint, TransportProtocol } from './message.js';
import { parseUri, type SipUri } from './uri.js';

/** One SRV answer as node:dns gives it. */
export interface SrvAnswer {
  name: string;
  port: number;
  priority: number;
  weight: number;
}

/** The part of node:dns/promises Resolver this module uses (inject a fake in tests). */
export interface DnsLike {
  resolveSrv(name: string): Promise<SrvAnswer[]>;
  resolve4(name: string): Promise<string[]>;
  resolve6(name: string): Promise<string[]>;
}

export type ResolvableTransport = Extract<TransportProtocol, 'udp' | 'tcp' | 'tls'>;

export interface SipResolveOptions {
  /** default: a node:dns/promises Resolver (system servers) */
  dns?: DnsLike;
  /** [0, 1) source for the SRV weight draw; default Math.random */
  random?: () => number;
  /**
   * Transports this client supports, most preferred first, used when the URI
   * names none and SRV decides. Default ['udp', 'tcp', 'tls'].
   */
  transports?: readonly ResolvableTransport[];
  /** also look up AAAA (after A); default true */
  ipv6?: boolean;
}

const DEFAULT_TRANSPORTS: readonly ResolvableTransport[] = ['udp', 'tcp', 'tls'];

export function defaultSipPort(protocol: TransportProtocol): number {
  return protocol === 'tls' || protocol === 'wss' ? 5061 : 5060;
}

function srvName(protocol: ResolvableTransport, domain: string): string {
  // RFC 3263 §4.1: TLS is "_sips._tcp", the others "_sip._<proto>"
  return protocol === 'tls' ? `_sips._tcp.${domain}` : `_sip._${protocol}.${domain}`;
}

/**
 * RFC 2782 order: priority ascending; within one priority a weighted random
 * draw without replacement (zero weights first so they can still be drawn).
 */
export function orderSrv(records: readonly SrvAnswer[], random: () => number = Math.random): SrvAnswer[] {
  const byPriority = new Map<number, SrvAnswer[]>();
  for (const r of records) {
    let group = byPriority.get(r.priority);
    if (group === undefined) {
      group = [];
      byPriority.set(r.priority, group);
    }
    group.push(r);
  }
  const out: SrvAnswer[] = [];
  for (const priority of [...byPriority.keys()].sort((a, b) => a - b)) {
    const pool = byPriority.get(priority)!.slice().sort((a, b) => (a.weight === 0 ? 0 : 1) - (b.weight === 0 ? 0 : 1));
    while (pool.length > 0) {
      const total = pool.reduce((sum, r) => sum + r.weight, 0);
      const draw = Math.floor(random() * (total + 1)); // uniform over 0..total inclusive
      let running = 0;
      let pick = pool.length - 1;
      for (let i = 0; i < pool.length; i++) {
        running += pool[i]!.weight;
        if (running >= draw) {
          pick = i;
          break;
        }
      }
      out.push(pool[pick]!);
      pool.splice(pick, 1);
    }
  }
  return out;
}

interface Target {
  host: string;
  port: number | undefined;
  /** undefined: let SRV pick */
  protocol: ResolvableTransport | 'ws' | 'wss' | undefined;
  secure: boolean;
}

function targetOf(uri: SipUri): Target | null {
  if (uri.scheme !== 'sip' && uri.scheme !== 'sips') return null;
  const secure = uri.scheme === 'sips';
  const maddr = uri.params.get('maddr');
  const raw = typeof maddr === 'string' && maddr.length > 0 ? maddr : uri.host;
  const host = raw.startsWith('[') && raw.endsWith(']') ? raw.slice(1, -1) : raw;
  if (host.length === 0) return null;
  const tp = uri.params.get('transport');
  let protocol: Target['protocol'];
  if (typeof tp === 'string') {
    const t = tp.toLowerCase();
    if (t === 'udp' || t === 'tcp' || t === 'tls' || t === 'ws' || t === 'wss') protocol = t;
    else return null;
    // a SIPS URI is TLS over TCP whatever the parameter says (RFC 3261 §26.2.2)
    if (secure && (t === 'tcp' || t === 'udp')) protocol = 'tls';
    if (secure && t === 'ws') protocol = 'wss';
  } else if (secure) protocol = 'tls';
  else if (isIP(host) !== 0 || uri.port !== undefined) protocol = 'udp'; // RFC 3263 §4.1
  return { host, port: uri.port, protocol, secure };
}

/**
 * Ordered endpoints for a SIP/SIPS URI (string or parsed), first to try
 * first. Empty when the URI is not resolvable or nothing was found. Never
 * rejects. No caching: callers keep the answer as long as they see fit.
 */
export async function resolveSipUri(uri: string | SipUri, options: SipResolveOptions = {}): Promise<Endpoint[]> {
  const parsed = typeof uri === 'string' ? parseUri(uri.trim()) : uri;
  const target = parsed === null ? null : targetOf(parsed);
  if (target === null) return [];
  const dns = options.dns ?? new Resolver();
  const ipv6 = options.ipv6 !== false;

  if (isIP(target.host) !== 0) {
    const protocol = target.protocol ?? 'udp';
    return [{ protocol, address: target.host, port: target.port ?? defaultSipPort(protocol) }];
  }
  if (target.port !== undefined || target.protocol === 'ws' || target.protocol === 'wss') {
    const protocol = target.protocol ?? 'udp';
    return addresses(dns, target.host, ipv6, protocol, target.port ?? defaultSipPort(protocol));
  }

  const candidates: readonly ResolvableTransport[] =
    target.protocol !== undefined ? [target.protocol] : target.secure ? ['tls'] : (options.transports ?? DEFAULT_TRANSPORTS);
  const random = options.random ?? Math.random;
  const answers = await Promise.all(candidates.map((p) => settle(dns.resolveSrv(srvName(p, target.host)))));
  const out: Endpoint[] = [];
  let anySrv = false;
  for (let i = 0; i < candidates.length; i++) {
    const records = answers[i]!;
    if (records.length === 0) continue;
    anySrv = true;
    // RFC 2782: a single "." target says the service is decidedly not offered
    const usable = records.filter((r) => r.name !== '.' && r.name !== '' && r.port > 0);
    for (const r of orderSrv(usable, random)) {
      out.push(...(await addresses(dns, r.name, ipv6, candidates[i]!, r.port)));
    }
  }
  if (!anySrv) {
    const protocol = target.protocol ?? (target.secure ? 'tls' : (candidates[0] ?? 'udp'));
    return addresses(dns, target.host, ipv6, protocol, defaultSipPort(protocol));
  }
  return dedupe(out);
}

/**
 * A resolver function of the shape the trunks use: like resolveSipUri but
 * rejects with a message naming the URI when nothing was found.
 */
export function sipResolver(options: SipResolveOptions = {}): (uri: string) => Promise<Endpoint[]> {
  const dns = options.dns ?? new Resolver();
  const opts: SipResolveOptions = { ...options, dns };
  return async (uri: string) => {
    const found = await resolveSipUri(uri, opts);
    if (found.length === 0) throw new Error(`${uri} did not resolve to any address`);
    return found;
  };
}

async function addresses(
  dns: DnsLike,
  host: string,
  ipv6: boolean,
  protocol: TransportProtocol,
  port: number,
): Promise<Endpoint[]> {
  const name = host.endsWith('.') ? host.slice(0, -1) : host;
  if (isIP(name) !== 0) return [{ protocol, address: name, port }];
  const [v4, v6] = await Promise.all([settle(dns.resolve4(name)), ipv6 ? settle(dns.resolve6(name)) : Promise.resolve([])]);
  const out: Endpoint[] = [];
  for (const address of v4) out.push({ protocol, address, port });
  for (const address of v6) out.push({ protocol, address, port });
  return out;
}

/** A lookup that failed (NXDOMAIN, no data, timeout) counts as no answer. */
async function settle<T>(p: Promise<T[]>): Promise<T[]> {
  try {
    const r = await p;
    return Array.isArray(r) ? r : [];
  } catch {
    return [];
  }
}

function dedupe(list: Endpoint[]): Endpoint[] {
  const seen = new Set<string>();
  const out: Endpoint[] = [];
  for (const e of list) {
    const key = `${e.protocol} ${e.address.toLowerCase()} ${e.port}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(e);
  }
  return out;
}
