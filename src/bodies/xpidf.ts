/**
 * XPIDF (application/xpidf+xml): the pre-RFC 3863 presence format older
 * Cisco, Polycom and Snom firmware asks for. Written in the shape Asterisk
 * (res_pjsip_xpidf_body_generator, through pjsip's xpidf.c) serves it, which is
 * what those phones are known to render: one presentity, one atom named for
 * the extension, one address with a status (open / inuse / closed) and an MSN
 * substatus.
 *   https://github.com/asterisk/asterisk/blob/master/res/res_pjsip_xpidf_body_generator.c
 * No DOCTYPE is written (pjsip writes none either, and our parser refuses them).
 */
import { BodyError } from './errors.js';
import { attrValue, escapeXml, parseXml, type ParseXmlOptions, type XmlElement } from './xml.js';

export const XPIDF_CONTENT_TYPE = 'application/xpidf+xml';

/** XPIDF address status: Asterisk's NOTIFY_OPEN / NOTIFY_INUSE / NOTIFY_CLOSED. */
export type XpidfStatus = 'open' | 'inuse' | 'closed';
/** MSN substatus values phones display (the first three are what Asterisk sends). */
export type XpidfSubstatus = 'online' | 'onthephone' | 'offline' | 'busy' | 'away' | 'berightback';

export interface XpidfDocument {
  /** The presentity's URI (written with ;method=SUBSCRIBE as Asterisk does). */
  presentity: string;
  /** Atom id: the extension (Asterisk) or any stable id. */
  atomId: string;
  /** The address URI (written with ;user=ip as Asterisk does). */
  address: string;
  status: XpidfStatus;
  substatus: XpidfSubstatus;
}

const STATUSES: ReadonlySet<string> = new Set(['open', 'inuse', 'closed']);
const SUBSTATUSES: ReadonlySet<string> = new Set(['online', 'onthephone', 'offline', 'busy', 'away', 'berightback']);

function withParam(uri: string, param: string): string {
  const name = param.slice(0, param.indexOf('='));
  return new RegExp(`;${name}=`, 'i').test(uri) ? uri : uri + ';' + param;
}

/** Serialize an XPIDF document. */
export function buildXpidf(doc: XpidfDocument): string {
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    '<presence>\n' +
    ` <presentity uri="${escapeXml(withParam(doc.presentity, 'method=SUBSCRIBE'))}"/>\n` +
    ` <atom id="${escapeXml(doc.atomId)}">\n` +
    `  <address uri="${escapeXml(withParam(doc.address, 'user=ip'))}" priority="0.800000">\n` +
    `   <status status="${doc.status}"/>\n` +
    `   <msnsubstatus substatus="${doc.substatus}"/>\n` +
    '  </address>\n' +
    ' </atom>\n' +
    '</presence>'
  );
}

function child(el: XmlElement, name: string): XmlElement | undefined {
  return el.children.find((c) => c.name === name);
}

/** Parse an XPIDF document (tests, upstream peers). BodyError 400 for anything missing. */
export function parseXpidf(body: Buffer | string, options?: ParseXmlOptions): XpidfDocument {
  const root = parseXml(body, options);
  if (root.name !== 'presence') throw new BodyError(400, 'XPIDF: the root element is not presence');
  const presentity = child(root, 'presentity');
  const atom = child(root, 'atom');
  const address = atom === undefined ? undefined : child(atom, 'address');
  const status = address === undefined ? undefined : child(address, 'status');
  const sub = address === undefined ? undefined : child(address, 'msnsubstatus');
  const presentityUri = presentity === undefined ? undefined : attrValue(presentity, 'uri');
  const atomId = atom === undefined ? undefined : attrValue(atom, 'id');
  const addressUri = address === undefined ? undefined : attrValue(address, 'uri');
  const statusValue = status === undefined ? undefined : attrValue(status, 'status');
  if (presentityUri === undefined || atomId === undefined || addressUri === undefined || statusValue === undefined) {
    throw new BodyError(400, 'XPIDF: presentity uri, atom id, address uri and status are required');
  }
  if (!STATUSES.has(statusValue)) throw new BodyError(400, `XPIDF: unknown status "${statusValue}"`);
  const subValue = sub === undefined ? undefined : attrValue(sub, 'substatus');
  const substatus = (subValue !== undefined && SUBSTATUSES.has(subValue) ? subValue : statusValue === 'open' ? 'online' : statusValue === 'inuse' ? 'onthephone' : 'offline') as XpidfSubstatus;
  return { presentity: presentityUri, atomId, address: addressUri, status: statusValue as XpidfStatus, substatus };
}
