/**
 * Safe XML reading for SIP bodies, and the escaping helper for building them.
 *
 * fast-xml-parser does the tokenising with entity processing off; everything
 * that makes XML dangerous (DOCTYPE, entity declarations) is refused before the
 * parser sees the text. Namespace prefixes are resolved here, because peers use
 * any prefix they like (`<rpid:activities>`, `<e:activities>`, a default xmlns).
 */
import { isUtf8 } from 'node:buffer';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { BodyError } from './errors.js';
import { NS_XML } from './namespaces.js';

export const DEFAULT_MAX_BODY_BYTES = 65536;

export interface ParseXmlOptions {
  /** Largest body accepted, in bytes (default 65536); larger gives BodyError 413. */
  maxBytes?: number;
}

/** One element with its name resolved to {namespace URI, local name}. */
export interface XmlElement {
  /** Namespace URI; '' when the element is in no namespace (or its prefix is unbound). */
  ns: string;
  /** Local name, without prefix. */
  name: string;
  /** Prefix as written ('' for none); for diagnostics only. */
  prefix: string;
  /** Attributes by qualified name as written (xmlns declarations left out), values decoded. */
  attrs: Map<string, string>;
  children: XmlElement[];
  /** Direct character data (text and CDATA) concatenated, decoded, untrimmed. */
  text: string;
}

const ATTRS_KEY = ':@';
const TEXT_KEY = '#text';
const CDATA_KEY = '#cdata';

const parser = new XMLParser({
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: '',
  processEntities: false,
  htmlEntities: false,
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: false,
  ignoreDeclaration: true,
  ignorePiTags: true,
  cdataPropName: CDATA_KEY,
  allowBooleanAttributes: false,
  jPath: false, // no path strings built per tag: about 30% faster, and no callback here needs them
});

const REFUSED_MARKUP = /<!(?:DOCTYPE|ENTITY)/i;
const DECLARED_ENCODING = /^<\?xml[^>]*?\sencoding\s*=\s*["']([^"']*)["']/;
const ACCEPTED_ENCODINGS = new Set(['utf-8', 'utf8', 'us-ascii', 'ascii']);

/**
 * Parse an XML body into its root element. Throws BodyError: 413 when larger
 * than maxBytes, 400 for DOCTYPE/ENTITY, non-UTF-8, or anything not well-formed.
 */
export function parseXml(body: Buffer | string, options: ParseXmlOptions = {}): XmlElement {
  const text = bodyText(body, options.maxBytes ?? DEFAULT_MAX_BODY_BYTES);
  // DTDs are never needed in these documents and are how XXE and entity bombs arrive.
  if (REFUSED_MARKUP.test(text)) throw new BodyError(400, 'DOCTYPE and ENTITY declarations are not accepted');
  const declared = DECLARED_ENCODING.exec(text);
  if (declared !== null && !ACCEPTED_ENCODINGS.has(declared[1]!.toLowerCase())) {
    throw new BodyError(400, `XML encoding ${declared[1]!} is not accepted; use UTF-8`);
  }
  if (text.slice(text.lastIndexOf('>') + 1).trim().length > 0) {
    throw new BodyError(400, 'not well-formed XML: text after the root element');
  }
  const valid = XMLValidator.validate(text, { allowBooleanAttributes: false });
  if (valid !== true) throw new BodyError(400, `not well-formed XML: ${valid.err.msg} (line ${valid.err.line})`);
  let nodes: unknown;
  try {
    nodes = parser.parse(text);
  } catch (err) {
    throw new BodyError(400, `not well-formed XML: ${err instanceof Error ? err.message : String(err)}`);
  }
  return rootOf(nodes);
}

function bodyText(body: Buffer | string, maxBytes: number): string {
  let text: string;
  if (typeof body === 'string') {
    // A UTF-16 length above the limit means at least that many bytes; only count when it might matter.
    if (body.length > maxBytes) throw tooLarge(maxBytes);
    if (body.length * 3 > maxBytes && Buffer.byteLength(body, 'utf8') > maxBytes) throw tooLarge(maxBytes);
    text = body;
  } else {
    if (body.length > maxBytes) throw tooLarge(maxBytes);
    if (!isUtf8(body)) throw new BodyError(400, 'body is not valid UTF-8');
    text = body.toString('utf8');
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  text = text.trimStart();
  if (text.length === 0) throw new BodyError(400, 'empty XML body');
  return text;
}

function tooLarge(maxBytes: number): BodyError {
  return new BodyError(413, `XML body larger than ${maxBytes} bytes`);
}

/** Namespace bindings in scope; a new link only where an element declares some. */
interface NsScope {
  readonly parent: NsScope | undefined;
  readonly bindings: Map<string, string>;
}

const ROOT_SCOPE: NsScope = { parent: undefined, bindings: new Map([['xml', NS_XML]]) };

function lookupNs(scope: NsScope | undefined, prefix: string): string | undefined {
  for (let s = scope; s !== undefined; s = s.parent) {
    const uri = s.bindings.get(prefix);
    if (uri !== undefined) return uri;
  }
  return undefined;
}

function rootOf(nodes: unknown): XmlElement {
  if (!Array.isArray(nodes)) throw new BodyError(400, 'not well-formed XML: no root element');
  let root: XmlElement | undefined;
  for (const node of nodes) {
    if (!isRecord(node)) continue;
    const tag = tagOf(node);
    if (tag === undefined) {
      const t = node[TEXT_KEY];
      if (typeof t === 'string' && t.trim().length > 0) throw new BodyError(400, 'not well-formed XML: text outside the root element');
      if (node[CDATA_KEY] !== undefined) throw new BodyError(400, 'not well-formed XML: CDATA outside the root element');
      continue;
    }
    if (root !== undefined) throw new BodyError(400, 'not well-formed XML: more than one root element');
    root = toElement(tag, node, ROOT_SCOPE);
  }
  if (root === undefined) throw new BodyError(400, 'not well-formed XML: no root element');
  return root;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The element name of a preserveOrder node, or undefined for text/CDATA nodes. */
function tagOf(node: Record<string, unknown>): string | undefined {
  for (const key in node) {
    if (key === ATTRS_KEY || key === TEXT_KEY || key === CDATA_KEY) continue;
    return key;
  }
  return undefined;
}

function toElement(qname: string, node: Record<string, unknown>, parentScope: NsScope): XmlElement {
  const attrs = new Map<string, string>();
  let scope = parentScope;
  const raw = node[ATTRS_KEY];
  if (isRecord(raw)) {
    let bindings: Map<string, string> | undefined;
    for (const key of Object.keys(raw)) {
      const value = raw[key];
      const decoded = typeof value === 'string' ? decodeEntities(value) : '';
      if (key === 'xmlns') (bindings ??= new Map()).set('', decoded);
      else if (key.startsWith('xmlns:')) (bindings ??= new Map()).set(key.slice(6), decoded);
      else attrs.set(key, decoded);
    }
    if (bindings !== undefined) scope = { parent: parentScope, bindings };
  }
  const colon = qname.indexOf(':');
  const prefix = colon < 0 ? '' : qname.slice(0, colon);
  const name = colon < 0 ? qname : qname.slice(colon + 1);
  const el: XmlElement = { ns: lookupNs(scope, prefix) ?? '', name, prefix, attrs, children: [], text: '' };
  const content = node[qname];
  if (Array.isArray(content)) {
    for (const child of content) {
      if (!isRecord(child)) continue;
      const t = child[TEXT_KEY];
      if (typeof t === 'string') {
        el.text += decodeEntities(t);
        continue;
      }
      const cdata = child[CDATA_KEY];
      if (cdata !== undefined) {
        el.text += cdataText(cdata);
        continue;
      }
      const tag = tagOf(child);
      if (tag !== undefined) el.children.push(toElement(tag, child, scope));
    }
  }
  return el;
}

function cdataText(cdata: unknown): string {
  if (!Array.isArray(cdata)) return '';
  let out = '';
  for (const part of cdata) {
    if (isRecord(part) && typeof part[TEXT_KEY] === 'string') out += part[TEXT_KEY];
  }
  return out;
}

const ENTITY_REF = /&(?:(lt|gt|amp|quot|apos)|#([0-9]{1,7})|#x([0-9a-fA-F]{1,6}));/g;
const NAMED: Readonly<Record<string, string>> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

/**
 * Replace the five predefined entities and character references. Any other
 * `&name;` is left as written: no DTD is accepted, so nothing can define it.
 */
export function decodeEntities(text: string): string {
  if (text.indexOf('&') < 0) return text;
  return text.replace(ENTITY_REF, (whole: string, named?: string, dec?: string, hex?: string) => {
    if (named !== undefined) return NAMED[named] ?? whole;
    const code = dec !== undefined ? Number.parseInt(dec, 10) : Number.parseInt(hex ?? '', 16);
    return isXmlChar(code) ? String.fromCodePoint(code) : whole;
  });
}

function isXmlChar(code: number): boolean {
  return (
    code === 0x9 ||
    code === 0xa ||
    code === 0xd ||
    (code >= 0x20 && code <= 0xd7ff) ||
    (code >= 0xe000 && code <= 0xfffd) ||
    (code >= 0x10000 && code <= 0x10ffff)
  );
}

// Characters that need escaping, plus those XML 1.0 does not allow at all (C0 controls
// other than tab/LF/CR, U+FFFE/U+FFFF, and unpaired surrogates).
const NEEDS_ESCAPE =
  /[&<>"'\r\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const ESCAPE_ALL =
  /[&<>"'\r\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

function escapeChar(ch: string): string {
  switch (ch) {
    case '&':
      return '&amp;';
    case '<':
      return '&lt;';
    case '>':
      return '&gt;';
    case '"':
      return '&quot;';
    case "'":
      return '&apos;';
    case '\r':
      return '&#13;';
    default:
      return ''; // not representable in XML 1.0: dropped
  }
}

/**
 * Escape text for use in XML character data or a quoted attribute value.
 * Characters XML 1.0 cannot carry are dropped. Returns the input unchanged
 * (no allocation) when nothing needs escaping.
 */
export function escapeXml(text: string): string {
  if (!NEEDS_ESCAPE.test(text)) return text;
  return text.replace(ESCAPE_ALL, escapeChar);
}

/** First child with the given namespace and local name. */
export function childElement(el: XmlElement, ns: string, name: string): XmlElement | undefined {
  for (const c of el.children) if (c.name === name && c.ns === ns) return c;
  return undefined;
}

/** Trimmed text of an element, or undefined when it has none. */
export function textValue(el: XmlElement | undefined): string | undefined {
  if (el === undefined) return undefined;
  const t = el.text.trim();
  return t.length > 0 ? t : undefined;
}

/** Trimmed attribute value, or undefined when absent or empty. */
export function attrValue(el: XmlElement, name: string): string | undefined {
  const v = el.attrs.get(name);
  if (v === undefined) return undefined;
  const t = v.trim();
  return t.length > 0 ? t : undefined;
}
