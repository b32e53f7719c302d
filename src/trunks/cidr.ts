/**
 * IP addresses and CIDR blocks as 16-byte IPv6 forms, so that an IPv4 block
 * also matches an IPv4-mapped IPv6 source (::ffff:10.0.0.5) as dual-stack
 * sockets report it.
 */
import { isIPv4, isIPv6 } from 'node:net';

export interface Cidr {
  /** the network, 16 bytes (IPv4 as ::ffff:a.b.c.d) */
  readonly bytes: Uint8Array;
  /** prefix length over the 128-bit form */
  readonly prefix: number;
  /** as written */
  readonly text: string;
}

function v4Bytes(text: string, out: Uint8Array, offset: number): boolean {
  const parts = text.split('.');
  if (parts.length !== 4) return false;
  for (let i = 0; i < 4; i++) {
    const n = Number(parts[i]);
    if (!Number.isInteger(n) || n < 0 || n > 255) return false;
    out[offset + i] = n;
  }
  return true;
}

/** 16 bytes of an IPv4 or IPv6 address (brackets and a zone id tolerated); null when not an address. */
export function ipBytes(address: string): Uint8Array | null {
  let a = address;
  if (a.startsWith('[') && a.endsWith(']')) a = a.slice(1, -1);
  const zone = a.indexOf('%');
  if (zone >= 0) a = a.slice(0, zone);
  const out = new Uint8Array(16);
  if (isIPv4(a)) {
    out[10] = 0xff;
    out[11] = 0xff;
    return v4Bytes(a, out, 12) ? out : null;
  }
  if (!isIPv6(a)) return null;
  let tail4: string | undefined;
  const lastColon = a.lastIndexOf(':');
  if (a.indexOf('.', lastColon) >= 0) {
    tail4 = a.slice(lastColon + 1);
    a = a.slice(0, lastColon + 1) + '0:0';
  }
  const halves = a.split('::');
  const head = halves[0] === '' ? [] : halves[0]!.split(':');
  const tail = halves.length > 1 ? (halves[1] === '' ? [] : halves[1]!.split(':')) : [];
  const groups = [...head, ...new Array<string>(8 - head.length - tail.length).fill('0'), ...tail];
  for (let i = 0; i < 8; i++) {
    const g = parseInt(groups[i]!, 16);
    out[i * 2] = g >> 8;
    out[i * 2 + 1] = g & 0xff;
  }
  if (tail4 !== undefined && !v4Bytes(tail4, out, 12)) return null;
  return out;
}

/** `10.0.0.0/24`, `2001:db8::/32` or a single address (a /32 or /128). Null when invalid. */
export function parseCidr(text: string): Cidr | null {
  const slash = text.indexOf('/');
  const addr = slash < 0 ? text.trim() : text.slice(0, slash).trim();
  const bytes = ipBytes(addr);
  if (bytes === null) return null;
  const v4 = isIPv4(addr);
  const max = v4 ? 32 : 128;
  let len = max;
  if (slash >= 0) {
    const p = text.slice(slash + 1).trim();
    if (!/^\d{1,3}$/.test(p)) return null;
    len = Number(p);
    if (len > max) return null;
  }
  const prefix = v4 ? 96 + len : len;
  // keep only the network bits, so 10.0.0.7/24 means 10.0.0.0/24
  for (let bit = prefix; bit < 128; bit++) bytes[bit >> 3] = bytes[bit >> 3]! & ~(0x80 >> (bit & 7));
  return { bytes, prefix, text };
}

export function cidrContains(cidr: Cidr, address: Uint8Array): boolean {
  const full = cidr.prefix >> 3;
  for (let i = 0; i < full; i++) if (cidr.bytes[i] !== address[i]) return false;
  const rest = cidr.prefix & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return (cidr.bytes[full]! & mask) === (address[full]! & mask);
}

/** Canonical text of an address for map keys: IPv4 (also when IPv4-mapped) dotted, IPv6 as 8 hex groups. */
export function ipKey(address: string): string | null {
  const b = ipBytes(address);
  return b === null ? null : keyOfBytes(b);
}

export function keyOfBytes(b: Uint8Array): string {
  let mapped = b[10] === 0xff && b[11] === 0xff;
  for (let i = 0; mapped && i < 10; i++) if (b[i] !== 0) mapped = false;
  if (mapped) return `${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((b[i]! << 8) | b[i + 1]!).toString(16));
  return groups.join(':');
}

/** A set of CIDR blocks checked in order (lists are short: a few trusted networks). */
export class CidrSet {
  private readonly blocks: Cidr[];

  constructor(blocks: Iterable<string | Cidr>) {
    this.blocks = [];
    for (const b of blocks) {
      const c = typeof b === 'string' ? parseCidr(b) : b;
      if (c !== null) this.blocks.push(c);
    }
  }

  get size(): number {
    return this.blocks.length;
  }

  has(address: string | Uint8Array): boolean {
    if (this.blocks.length === 0) return false;
    const bytes = typeof address === 'string' ? ipBytes(address) : address;
    if (bytes === null) return false;
    for (const b of this.blocks) if (cidrContains(b, bytes)) return true;
    return false;
  }
}
