/**
 * Dialog-info documents of the dialog event package (RFC 4235), parsed
 * leniently enough for what Asterisk, Kamailio and Polycom send.
 */
import { BodyError } from './errors.js';
import { NS_DIALOG_INFO } from './namespaces.js';
import {
  attrValue,
  childElement,
  escapeXml,
  parseXml,
  textValue,
  type ParseXmlOptions,
  type XmlElement,
} from './xml.js';

export const DIALOG_INFO_CONTENT_TYPE = 'application/dialog-info+xml';

export type DialogStateName = 'trying' | 'proceeding' | 'early' | 'confirmed' | 'terminated';

export interface DialogParticipant {
  identity?: string;
  display?: string;
  target?: string;
  /** Target parameters in document order, e.g. ['+sip.rendering', 'no'] for a held call. */
  targetParams?: Array<[string, string]>;
}

export interface DialogInfoDialog {
  id: string;
  callId?: string;
  localTag?: string;
  remoteTag?: string;
  direction?: 'initiator' | 'recipient';
  state: DialogStateName;
  /** Event attribute of <state>: cancelled, rejected, replaced, local-bye, remote-bye, error, timeout. */
  event?: string;
  /** Response code attribute of <state>. */
  code?: number;
  duration?: number;
  local?: DialogParticipant;
  remote?: DialogParticipant;
}

export interface DialogInfoDocument {
  /** The monitored AoR; '' when a peer left it out. */
  entity: string;
  version: number;
  state: 'full' | 'partial';
  /** No dialogs means the entity is idle. */
  dialogs: DialogInfoDialog[];
}

const STATES: ReadonlySet<string> = new Set<DialogStateName>(['trying', 'proceeding', 'early', 'confirmed', 'terminated']);
const UNSIGNED = /^[0-9]{1,15}$/;

// ---------------------------------------------------------------------------
// Parse

/** Parse a dialog-info body. Throws BodyError (400 malformed, 413 oversize, 415 not dialog-info). */
export function parseDialogInfo(body: Buffer | string, options?: ParseXmlOptions): DialogInfoDocument {
  const root = parseXml(body, options);
  if (root.name !== 'dialog-info' || root.ns !== NS_DIALOG_INFO) {
    throw new BodyError(415, `not a dialog-info document (root ${root.ns.length > 0 ? `{${root.ns}}` : ''}${root.name})`);
  }
  // RFC 4235 §4.1: version and state are mandatory; version orders the NOTIFYs.
  const versionText = attrValue(root, 'version');
  if (versionText === undefined || !UNSIGNED.test(versionText)) {
    throw new BodyError(400, 'dialog-info version attribute missing or not a non-negative integer');
  }
  const stateText = attrValue(root, 'state')?.toLowerCase();
  if (stateText !== 'full' && stateText !== 'partial') {
    throw new BodyError(400, 'dialog-info state attribute must be full or partial');
  }
  const doc: DialogInfoDocument = {
    entity: attrValue(root, 'entity') ?? '',
    version: Number(versionText),
    state: stateText,
    dialogs: [],
  };
  for (const child of root.children) {
    if (child.ns === NS_DIALOG_INFO && child.name === 'dialog') doc.dialogs.push(readDialog(child));
  }
  return doc;
}

function readDialog(el: XmlElement): DialogInfoDialog {
  const id = attrValue(el, 'id');
  if (id === undefined) throw new BodyError(400, 'dialog element has no id');
  const stateEl = childElement(el, NS_DIALOG_INFO, 'state');
  const state = textValue(stateEl)?.toLowerCase();
  if (stateEl === undefined || state === undefined || !STATES.has(state)) {
    throw new BodyError(400, `dialog ${id} has no valid state`);
  }
  const dialog: DialogInfoDialog = { id, state: state as DialogStateName };
  const callId = attrValue(el, 'call-id');
  if (callId !== undefined) dialog.callId = callId;
  const localTag = attrValue(el, 'local-tag');
  if (localTag !== undefined) dialog.localTag = localTag;
  const remoteTag = attrValue(el, 'remote-tag');
  if (remoteTag !== undefined) dialog.remoteTag = remoteTag;
  const direction = attrValue(el, 'direction')?.toLowerCase();
  if (direction === 'initiator' || direction === 'recipient') dialog.direction = direction;

  const event = attrValue(stateEl, 'event');
  if (event !== undefined) dialog.event = event;
  const code = attrValue(stateEl, 'code');
  if (code !== undefined && UNSIGNED.test(code)) dialog.code = Number(code);

  for (const child of el.children) {
    if (child.ns !== NS_DIALOG_INFO) continue;
    if (child.name === 'duration') {
      const d = textValue(child);
      if (d !== undefined && UNSIGNED.test(d)) dialog.duration = Number(d);
    } else if (child.name === 'local') {
      dialog.local ??= readParticipant(child);
    } else if (child.name === 'remote') {
      dialog.remote ??= readParticipant(child);
    }
  }
  return dialog;
}

function readParticipant(el: XmlElement): DialogParticipant {
  const p: DialogParticipant = {};
  const identity = childElement(el, NS_DIALOG_INFO, 'identity');
  if (identity !== undefined) {
    const uri = textValue(identity);
    if (uri !== undefined) p.identity = uri;
    const display = attrValue(identity, 'display');
    if (display !== undefined) p.display = display;
  }
  const target = childElement(el, NS_DIALOG_INFO, 'target');
  if (target !== undefined) {
    const uri = attrValue(target, 'uri');
    if (uri !== undefined) p.target = uri;
    for (const param of target.children) {
      if (param.ns !== NS_DIALOG_INFO || param.name !== 'param') continue;
      const name = attrValue(param, 'pname');
      if (name === undefined) continue;
      (p.targetParams ??= []).push([name, param.attrs.get('pval') ?? '']);
    }
  }
  return p;
}

// ---------------------------------------------------------------------------
// Build

const XML_DECL = '<?xml version="1.0" encoding="UTF-8"?>\n';

/**
 * Serialize a dialog-info document. Element order follows the RFC 4235 schema:
 * state, duration, local, remote; identity before target in a participant.
 */
export function buildDialogInfo(doc: DialogInfoDocument): string {
  let out = `${XML_DECL}<dialog-info xmlns="${NS_DIALOG_INFO}" version="${doc.version}" state="${doc.state}" entity="${escapeXml(doc.entity)}">`;
  for (const d of doc.dialogs) out += dialogXml(d);
  return out + '</dialog-info>';
}

function dialogXml(d: DialogInfoDialog): string {
  let out = `<dialog id="${escapeXml(d.id)}"`;
  if (d.callId !== undefined) out += ` call-id="${escapeXml(d.callId)}"`;
  if (d.localTag !== undefined) out += ` local-tag="${escapeXml(d.localTag)}"`;
  if (d.remoteTag !== undefined) out += ` remote-tag="${escapeXml(d.remoteTag)}"`;
  if (d.direction !== undefined) out += ` direction="${d.direction}"`;
  out += '><state';
  if (d.event !== undefined) out += ` event="${escapeXml(d.event)}"`;
  if (d.code !== undefined) out += ` code="${d.code}"`;
  out += `>${d.state}</state>`;
  if (d.duration !== undefined) out += `<duration>${d.duration}</duration>`;
  if (d.local !== undefined) out += participantXml('local', d.local);
  if (d.remote !== undefined) out += participantXml('remote', d.remote);
  return out + '</dialog>';
}

function participantXml(tag: 'local' | 'remote', p: DialogParticipant): string {
  let out = `<${tag}>`;
  if (p.identity !== undefined) {
    out +=
      p.display !== undefined
        ? `<identity display="${escapeXml(p.display)}">${escapeXml(p.identity)}</identity>`
        : `<identity>${escapeXml(p.identity)}</identity>`;
  }
  if (p.target !== undefined) {
    const params = p.targetParams;
    if (params !== undefined && params.length > 0) {
      out += `<target uri="${escapeXml(p.target)}">`;
      for (const [name, value] of params) out += `<param pname="${escapeXml(name)}" pval="${escapeXml(value)}"/>`;
      out += '</target>';
    } else {
      out += `<target uri="${escapeXml(p.target)}"/>`;
    }
  }
  return out + `</${tag}>`;
}
