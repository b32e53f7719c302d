/**
 * multipart/related (RFC 2387) over the MIME multipart syntax (RFC 2046 §5.1),
 * as RFC 4662 §5 uses it to carry a resource list's state: an RLMI root part,
 * then one part per resource. Build with a boundary that occurs in no part;
 * parse defensively (hostile input gives BodyError, never another throw).
 */
import { randomBytes } from 'node:crypto';
import { parseMediaType } from '../sip/header-values.js';
import { BodyError } from './errors.js';
import { DEFAULT_MAX_BODY_BYTES } from './xml.js';

export const MULTIPART_RELATED = 'multipart/related';

export interface MimePart {
  /** Content-Type value of the part. */
  contentType: string;
  /** Content-ID without the angle brackets (RFC 2392). */
  contentId?: string;
  /** Other part headers, lower-case names, in order (Content-Transfer-Encoding, ...). */
  headers: Array<[string, string]>;
  body: Buffer;
}

export interface MultipartRelated {
  /** The `type` parameter: the root part's content type. */
  type: string | undefined;
  /** The `start` parameter without angle brackets: the root part's Content-ID. */
  start: string | undefined;
  boundary: string;
  parts: MimePart[];
}

export interface BuildMultipartOptions {
  /** Root part's type (the `type` parameter); default the first part's bare media type. */
  type?: string;
  /** Content-ID of the root part (the `start` parameter); default the first part's Content-ID. */
  start?: string;
  /** Boundary to try first (tests); a fresh one is chosen when it occurs in a part. */
  boundary?: string;
}

export interface BuiltMultipart {
  /** Content-Type header value for the message carrying the body. */
  contentType: string;
  body: Buffer;
  boundary: string;
}

export interface ParseMultipartOptions {
  /** Largest body accepted, in bytes (default 65536 like XML bodies); larger gives 413. */
  maxBytes?: number;
  /** Most parts accepted (default 1024). */
  maxParts?: number;
}

const CRLF = Buffer.from('\r\n', 'latin1');
const BOUNDARY_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
/** RFC 2046 §5.1.1 bchars (without the space, which may not end a boundary). */
const BOUNDARY_SYNTAX = /^[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]$/;
/**
 * Boundaries we write: bchars that are also an RFC 3261 §25.1 token, so the
 * parameter goes unquoted (some SIP stacks, linphone's among them, keep the
 * quotes of a quoted boundary as part of it). Parsing accepts either form.
 */
const TOKEN_BOUNDARY = /^[0-9A-Za-z'+_\-.]{1,70}$/;

function randomBoundary(): string {
  const bytes = randomBytes(24);
  let out = '';
  for (const b of bytes) out += BOUNDARY_CHARS[b % BOUNDARY_CHARS.length];
  return out;
}

function occursIn(parts: readonly MimePart[], delimiter: Buffer): boolean {
  for (const p of parts) if (p.body.indexOf(delimiter) >= 0) return true;
  return false;
}

function headerLine(name: string, value: string): string {
  if (/[\r\n]/.test(value)) throw new BodyError(400, `part header ${name} holds a line break`);
  return `${name}: ${value}\r\n`;
}

function bareType(contentType: string): string {
  const semi = contentType.indexOf(';');
  return (semi < 0 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
}

/**
 * Build a multipart/related body. The boundary is random and checked against
 * every part (RFC 2046 §5.1.1: it must not occur in the encapsulated text).
 */
export function buildMultipartRelated(parts: readonly MimePart[], options: BuildMultipartOptions = {}): BuiltMultipart {
  if (parts.length === 0) throw new BodyError(400, 'a multipart body needs at least one part');
  let boundary = options.boundary;
  if (boundary !== undefined && !TOKEN_BOUNDARY.test(boundary)) throw new BodyError(400, 'invalid multipart boundary (a token of letters, digits and \'+_-. is expected)');
  for (let attempt = 0; ; attempt++) {
    if (boundary !== undefined && !occursIn(parts, Buffer.from(`--${boundary}`, 'latin1'))) break;
    if (attempt > 16) throw new BodyError(400, 'no boundary found that occurs in no part');
    boundary = randomBoundary();
  }
  const chunks: Buffer[] = [];
  const dash = Buffer.from(`--${boundary}\r\n`, 'latin1');
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i]!;
    // The CRLF before a delimiter belongs to the delimiter (RFC 2046 §5.1.1).
    if (i > 0) chunks.push(CRLF);
    chunks.push(dash);
    let head = '';
    for (const [name, value] of p.headers) head += headerLine(name, value);
    if (p.contentId !== undefined) head += headerLine('Content-ID', `<${p.contentId}>`);
    head += headerLine('Content-Type', p.contentType);
    head += '\r\n';
    chunks.push(Buffer.from(head, 'utf8'), p.body);
  }
  chunks.push(Buffer.from(`\r\n--${boundary}--\r\n`, 'latin1'));
  const type = options.type ?? bareType(parts[0]!.contentType);
  const start = options.start ?? parts[0]!.contentId;
  // RFC 2387 §3.1/§3.2: type names the root's content type, start its Content-ID.
  let contentType = `${MULTIPART_RELATED};type="${type}"`;
  if (start !== undefined) contentType += `;start="<${start}>"`;
  contentType += `;boundary=${boundary}`;
  return { contentType, body: Buffer.concat(chunks), boundary: boundary! };
}

function unbracket(value: string): string {
  const v = value.trim();
  return v.startsWith('<') && v.endsWith('>') ? v.slice(1, -1).trim() : v;
}

/** Parse part headers (RFC 5322 field syntax with folding). */
function parseHeaders(text: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  if (text.length === 0) return out;
  const lines = text.split('\r\n');
  for (const line of lines) {
    if (line.length === 0) continue;
    const first = line.charCodeAt(0);
    if (first === 0x20 || first === 0x09) {
      const last = out[out.length - 1];
      if (last === undefined) throw new BodyError(400, 'multipart: continuation line before any part header');
      last[1] += ' ' + line.trim();
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) throw new BodyError(400, 'multipart: part header line without a colon');
    const name = line.slice(0, colon).trim().toLowerCase();
    if (!/^[!-9;-~]+$/.test(name)) throw new BodyError(400, 'multipart: invalid part header name');
    out.push([name, line.slice(colon + 1).trim()]);
  }
  return out;
}

/** The index just after a delimiter line's CRLF (transport padding allowed), or -1. */
function afterDelimiterLine(body: Buffer, from: number): number {
  let i = from;
  while (i < body.length && (body[i] === 0x20 || body[i] === 0x09)) i++;
  if (body[i] === 0x0d && body[i + 1] === 0x0a) return i + 2;
  return -1;
}

/**
 * Parse a multipart/related body given its Content-Type value. Throws
 * BodyError: 415 when the type is not multipart/related, 413 when too large,
 * 400 for anything malformed (no boundary, no closing delimiter, bad part headers).
 */
export function parseMultipartRelated(body: Buffer, contentType: string, options: ParseMultipartOptions = {}): MultipartRelated {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BODY_BYTES;
  const maxParts = options.maxParts ?? 1024;
  if (body.length > maxBytes) throw new BodyError(413, `multipart body larger than ${maxBytes} bytes`);
  const media = parseMediaType(contentType);
  if (media === null) throw new BodyError(400, 'multipart: malformed Content-Type');
  if (media.type !== 'multipart' || media.subtype !== 'related') {
    throw new BodyError(415, `not multipart/related (${media.type}/${media.subtype})`);
  }
  const boundary = media.params.get('boundary');
  if (boundary === undefined || boundary === null || !BOUNDARY_SYNTAX.test(boundary)) {
    throw new BodyError(400, 'multipart: missing or invalid boundary parameter');
  }
  const typeParam = media.params.get('type');
  const startParam = media.params.get('start');
  const delimiter = Buffer.from(`--${boundary}`, 'latin1');
  const inner = Buffer.from(`\r\n--${boundary}`, 'latin1');

  // The first delimiter starts the body or follows the preamble's CRLF.
  let at = body.subarray(0, delimiter.length).equals(delimiter) ? 0 : body.indexOf(inner);
  if (at < 0) throw new BodyError(400, 'multipart: no boundary delimiter');
  if (at > 0) at += 2;
  let pos = at + delimiter.length;
  const parts: MimePart[] = [];
  for (;;) {
    if (body[pos] === 0x2d && body[pos + 1] === 0x2d) break; // close delimiter
    const start = afterDelimiterLine(body, pos);
    if (start < 0) throw new BodyError(400, 'multipart: delimiter line not ended by CRLF');
    const next = body.indexOf(inner, start - 2);
    if (next < 0) throw new BodyError(400, 'multipart: no closing delimiter');
    if (parts.length >= maxParts) throw new BodyError(413, `multipart: more than ${maxParts} parts`);
    parts.push(parsePart(body.subarray(start, Math.max(start, next))));
    pos = next + inner.length;
  }
  if (parts.length === 0) throw new BodyError(400, 'multipart: no body parts');
  const result: MultipartRelated = {
    type: typeParam === undefined || typeParam === null ? undefined : typeParam.toLowerCase(),
    start: startParam === undefined || startParam === null ? undefined : unbracket(startParam),
    boundary,
    parts,
  };
  return result;
}

function parsePart(raw: Buffer): MimePart {
  // Headers end at the first empty line; a part may start with it (no headers).
  let headerEnd: number;
  let bodyStart: number;
  if (raw[0] === 0x0d && raw[1] === 0x0a) {
    headerEnd = 0;
    bodyStart = 2;
  } else {
    const blank = raw.indexOf('\r\n\r\n', 0, 'latin1');
    if (blank < 0) throw new BodyError(400, 'multipart: part headers not ended by an empty line');
    headerEnd = blank;
    bodyStart = blank + 4;
  }
  if (headerEnd > 8192) throw new BodyError(400, 'multipart: part headers too long');
  const headerText = raw.subarray(0, headerEnd).toString('latin1');
  const all = parseHeaders(headerText);
  let contentType: string | undefined;
  let contentId: string | undefined;
  const headers: Array<[string, string]> = [];
  for (const [name, value] of all) {
    if (name === 'content-type') {
      if (contentType !== undefined) throw new BodyError(400, 'multipart: part with two Content-Type headers');
      contentType = value;
    } else if (name === 'content-id') {
      contentId = unbracket(value);
    } else {
      headers.push([name, value]);
    }
  }
  // RFC 2046 §5.1: a part without Content-Type is text/plain; charset=us-ascii.
  const part: MimePart = { contentType: contentType ?? 'text/plain', headers, body: raw.subarray(bodyStart) };
  if (contentId !== undefined) part.contentId = contentId;
  return part;
}

/** The root part: the one whose Content-ID is `start`, else the first (RFC 2387 §3.2). */
export function rootPart(doc: MultipartRelated): MimePart | undefined {
  if (doc.start === undefined) return doc.parts[0];
  return doc.parts.find((p) => p.contentId === doc.start);
}
