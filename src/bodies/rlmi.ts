/**
 * Resource List Meta-Information (RLMI, RFC 4662 §5): the root part of a
 * list NOTIFY, naming the list, its version, whether it is the full state,
 * and per resource the instance (back-end subscription) and the Content-ID
 * of the part carrying that resource's state.
 */
import { BodyError } from './errors.js';
import { attrValue, escapeXml, parseXml, textValue, type ParseXmlOptions, type XmlElement } from './xml.js';

export const NS_RLMI = 'urn:ietf:params:xml:ns:rlmi';
export const RLMI_CONTENT_TYPE = 'application/rlmi+xml';

export type RlmiInstanceState = 'active' | 'pending' | 'terminated';

export interface RlmiName {
  value: string;
  /** xml:lang */
  lang?: string;
}

export interface RlmiInstance {
  id: string;
  state: RlmiInstanceState;
  /** Why the instance is pending or terminated (RFC 6665 reasons: noresource, rejected, timeout, ...). */
  reason?: string;
  /** Content-ID (without brackets) of the part with this instance's state. */
  cid?: string;
}

export interface RlmiResource {
  uri: string;
  names: RlmiName[];
  instances: RlmiInstance[];
}

export interface RlmiDocument {
  /** The list's URI. */
  uri: string;
  /** 0 for the first document of a subscription, +1 for each after. */
  version: number;
  /** True: every resource is listed; false: only those that changed. */
  fullState: boolean;
  /** Set when this list is itself a part of an enclosing list's body. */
  cid?: string;
  names: RlmiName[];
  resources: RlmiResource[];
}

const INSTANCE_STATES: ReadonlySet<string> = new Set(['active', 'pending', 'terminated']);
const MAX_VERSION = 0xffffffff;

// ---------------------------------------------------------------------------
// Build

function nameXml(n: RlmiName, indent: string): string {
  const lang = n.lang === undefined ? '' : ` xml:lang="${escapeXml(n.lang)}"`;
  return `${indent}<name${lang}>${escapeXml(n.value)}</name>\n`;
}

/** The RLMI document as UTF-8 XML text. */
export function buildRlmi(doc: RlmiDocument): string {
  if (!Number.isInteger(doc.version) || doc.version < 0 || doc.version > MAX_VERSION) {
    throw new BodyError(400, `RLMI version ${doc.version} is not a 32-bit unsigned integer`);
  }
  let out =
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<list xmlns="${NS_RLMI}" uri="${escapeXml(doc.uri)}" version="${doc.version}" fullState="${doc.fullState ? 'true' : 'false'}"` +
    (doc.cid === undefined ? '' : ` cid="${escapeXml(doc.cid)}"`) +
    '>\n';
  for (const n of doc.names) out += nameXml(n, '  ');
  for (const r of doc.resources) {
    out += `  <resource uri="${escapeXml(r.uri)}">\n`;
    for (const n of r.names) out += nameXml(n, '    ');
    for (const i of r.instances) {
      out += `    <instance id="${escapeXml(i.id)}" state="${i.state}"`;
      if (i.reason !== undefined) out += ` reason="${escapeXml(i.reason)}"`;
      if (i.cid !== undefined) out += ` cid="${escapeXml(i.cid)}"`;
      out += '/>\n';
    }
    out += '  </resource>\n';
  }
  return out + '</list>\n';
}

// ---------------------------------------------------------------------------
// Parse

function describe(el: XmlElement): string {
  return el.ns.length > 0 ? `{${el.ns}}${el.name}` : el.name;
}

function readName(el: XmlElement): RlmiName | undefined {
  const value = textValue(el);
  if (value === undefined) return undefined;
  const lang = attrValue(el, 'xml:lang');
  return lang === undefined ? { value } : { value, lang };
}

function readVersion(text: string | undefined): number {
  if (text === undefined || !/^[0-9]{1,10}$/.test(text)) throw new BodyError(400, 'RLMI list has no valid version');
  const v = Number(text);
  if (v > MAX_VERSION) throw new BodyError(400, 'RLMI list version out of range');
  return v;
}

function readBoolean(text: string | undefined): boolean {
  // xs:boolean lexical space
  if (text === 'true' || text === '1') return true;
  if (text === 'false' || text === '0') return false;
  throw new BodyError(400, 'RLMI list has no valid fullState');
}

function readInstance(el: XmlElement): RlmiInstance {
  const id = attrValue(el, 'id');
  if (id === undefined) throw new BodyError(400, 'RLMI instance has no id');
  const state = attrValue(el, 'state');
  if (state === undefined || !INSTANCE_STATES.has(state)) throw new BodyError(400, 'RLMI instance has no valid state');
  const inst: RlmiInstance = { id, state: state as RlmiInstanceState };
  const reason = attrValue(el, 'reason');
  if (reason !== undefined) inst.reason = reason;
  const cid = attrValue(el, 'cid');
  if (cid !== undefined) inst.cid = cid;
  return inst;
}

function readResource(el: XmlElement): RlmiResource {
  const uri = attrValue(el, 'uri');
  if (uri === undefined) throw new BodyError(400, 'RLMI resource has no uri');
  const r: RlmiResource = { uri, names: [], instances: [] };
  for (const c of el.children) {
    if (c.ns !== NS_RLMI) continue;
    if (c.name === 'name') {
      const n = readName(c);
      if (n !== undefined) r.names.push(n);
    } else if (c.name === 'instance') {
      r.instances.push(readInstance(c));
    }
  }
  return r;
}

/** Parse an RLMI body. Throws BodyError (400 malformed, 413 oversize, 415 not RLMI). */
export function parseRlmi(body: Buffer | string, options?: ParseXmlOptions): RlmiDocument {
  const root = parseXml(body, options);
  if (root.name !== 'list' || root.ns !== NS_RLMI) throw new BodyError(415, `not an RLMI document (root ${describe(root)})`);
  const uri = attrValue(root, 'uri');
  if (uri === undefined) throw new BodyError(400, 'RLMI list has no uri');
  const doc: RlmiDocument = {
    uri,
    version: readVersion(attrValue(root, 'version')),
    fullState: readBoolean(attrValue(root, 'fullState')),
    names: [],
    resources: [],
  };
  const cid = attrValue(root, 'cid');
  if (cid !== undefined) doc.cid = cid;
  for (const c of root.children) {
    if (c.ns !== NS_RLMI) continue; // extensions are ignored
    if (c.name === 'name') {
      const n = readName(c);
      if (n !== undefined) doc.names.push(n);
    } else if (c.name === 'resource') {
      doc.resources.push(readResource(c));
    }
  }
  return doc;
}
