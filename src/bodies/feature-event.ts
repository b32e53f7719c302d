/**
 * Device feature key synchronisation bodies (application/x-as-feature-event+xml,
 * the BroadSoft "as-feature-event" package Polycom and Yealink phones
 * implement; ECMA-323 CSTA element names): the phone sends SetDoNotDisturb /
 * SetForwarding in a SUBSCRIBE, the server answers with DoNotDisturbEvent /
 * ForwardingEvent in NOTIFYs.
 *   Format as Asterisk (res_pjsip_features_body_generator.c) and
 *   Kamailio presence_dfks serve it: https://www.kamailio.org/docs/modules/devel/modules/presence_dfks.html
 */
import { BodyError } from './errors.js';
import { escapeXml, parseXml, textValue, type ParseXmlOptions, type XmlElement } from './xml.js';

export const FEATURE_EVENT_CONTENT_TYPE = 'application/x-as-feature-event+xml';
export const NS_CSTA_ED3 = 'http://www.ecma-international.org/standards/ecma-323/csta/ed3';
/** The misspelt namespace some implementations (Kamailio presence_dfks) write. */
const NS_CSTA_ED3_TYPO = 'http://www.ecmainternational.org/standards/ecma-323/csta/ed3';

export type ForwardingType = 'forwardImmediate' | 'forwardBusy' | 'forwardNoAns';
const FORWARDING_TYPES: ReadonlySet<string> = new Set(['forwardImmediate', 'forwardBusy', 'forwardNoAns']);

export type FeatureRequest =
  | { kind: 'dnd'; device?: string; on: boolean }
  | { kind: 'forwarding'; device?: string; type: ForwardingType; on: boolean; to?: string; ringCount?: number };

function child(el: XmlElement, name: string): XmlElement | undefined {
  return el.children.find((c) => c.name === name);
}

function bool(el: XmlElement | undefined, what: string): boolean {
  const v = textValue(el)?.toLowerCase();
  if (v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0') return false;
  throw new BodyError(400, `${what}: true or false expected`);
}

const LATIN1_DECL = /^(\s*<\?xml[^>]*?\sencoding\s*=\s*["'])(iso-8859-1|latin1)(["'])/i;

/**
 * Phones declare ISO-8859-1 (Polycom, Yealink; Kamailio writes it too). For
 * pure ASCII bodies that is the same bytes as UTF-8, so the declaration is
 * read as UTF-8; a body with other bytes is refused like any non-UTF-8 XML.
 */
function asUtf8(body: Buffer | string): Buffer | string {
  const text = typeof body === 'string' ? body : body.toString('latin1');
  if (!LATIN1_DECL.test(text) || !/^[\x00-\x7f]*$/.test(text)) return body;
  return text.replace(LATIN1_DECL, '$1UTF-8$3');
}

/** A phone's request (SetDoNotDisturb, SetForwarding). BodyError 400 malformed, 415 another document. */
export function parseFeatureRequest(body: Buffer | string, options?: ParseXmlOptions): FeatureRequest {
  const root = parseXml(asUtf8(body), options);
  if (root.ns !== NS_CSTA_ED3 && root.ns !== NS_CSTA_ED3_TYPO && root.ns !== '') {
    throw new BodyError(415, `not a feature event document (namespace ${root.ns})`);
  }
  const device = textValue(child(root, 'device'));
  switch (root.name) {
    case 'SetDoNotDisturb': {
      const r: FeatureRequest = { kind: 'dnd', on: bool(child(root, 'doNotDisturbOn'), 'doNotDisturbOn') };
      if (device !== undefined) r.device = device;
      return r;
    }
    case 'SetForwarding': {
      const type = textValue(child(root, 'forwardingType'));
      if (type === undefined || !FORWARDING_TYPES.has(type)) throw new BodyError(400, 'forwardingType: forwardImmediate, forwardBusy or forwardNoAns');
      const r: FeatureRequest = { kind: 'forwarding', type: type as ForwardingType, on: bool(child(root, 'activateForward'), 'activateForward') };
      if (device !== undefined) r.device = device;
      const to = textValue(child(root, 'forwardDN'));
      if (to !== undefined) r.to = to;
      const rc = Number(textValue(child(root, 'ringCount')));
      if (Number.isInteger(rc) && rc > 0) r.ringCount = rc;
      return r;
    }
    default:
      throw new BodyError(415, `unsupported feature request ${root.name} (SetDoNotDisturb or SetForwarding)`);
  }
}

const DECL = '<?xml version="1.0" encoding="UTF-8"?>\n';

export function buildDoNotDisturbEvent(device: string, on: boolean): string {
  return `${DECL}<DoNotDisturbEvent xmlns="${NS_CSTA_ED3}"><device>${escapeXml(device)}</device><doNotDisturbOn>${on}</doNotDisturbOn></DoNotDisturbEvent>`;
}

export function buildForwardingEvent(device: string, type: ForwardingType, on: boolean, to?: string, ringCount?: number): string {
  let out = `${DECL}<ForwardingEvent xmlns="${NS_CSTA_ED3}"><device>${escapeXml(device)}</device><forwardingType>${type}</forwardingType><forwardStatus>${on}</forwardStatus>`;
  out += to === undefined ? '<forwardTo/>' : `<forwardTo>${escapeXml(to)}</forwardTo>`;
  if (ringCount !== undefined) out += `<ringCount>${ringCount}</ringCount>`;
  return out + '</ForwardingEvent>';
}

/** Read a DoNotDisturbEvent (tests, upstream peers): the DND flag. */
export function parseDoNotDisturbEvent(body: Buffer | string): { device?: string; on: boolean } {
  const root = parseXml(body);
  if (root.name !== 'DoNotDisturbEvent') throw new BodyError(415, 'not a DoNotDisturbEvent');
  const r: { device?: string; on: boolean } = { on: bool(child(root, 'doNotDisturbOn'), 'doNotDisturbOn') };
  const d = textValue(child(root, 'device'));
  if (d !== undefined) r.device = d;
  return r;
}
