/**
 * PIDF (RFC 3863) with the RFC 4479 person element, RPID activities (RFC 4480)
 * and the Cisco extensions (ce:dnd, ce:alerting).
 */
import { BodyError } from './errors.js';
import {
  NS_CISCO_RPID,
  NS_CPIM_PIDF,
  NS_DATA_MODEL,
  NS_PIDF,
  NS_RPID,
  isRpidNamespace,
} from './namespaces.js';
import {
  attrValue,
  escapeXml,
  parseXml,
  textValue,
  type ParseXmlOptions,
  type XmlElement,
} from './xml.js';

/** The same document under two labels; Cisco phones ask for the second. */
export const PIDF_CONTENT_TYPES = ['application/pidf+xml', 'application/cpim-pidf+xml'] as const;

export type Basic = 'open' | 'closed';

export interface PidfActivity {
  /** Local name: on-the-phone, busy, away, meeting, vacation, appointment, unknown, other, alerting, dnd, ... */
  name: string;
  /** 'rpid' (RFC 4480 or the older status:rpid namespace), 'cisco', or another namespace URI. */
  ns: 'rpid' | 'cisco' | string;
  /** Free text of <other>. */
  text?: string;
}

export interface PidfTuple {
  id: string;
  basic?: Basic;
  contact?: string;
  contactPriority?: number;
  notes: string[];
  timestamp?: string;
  /** Activities found inside a tuple (old-style RPID). */
  activities: PidfActivity[];
}

/** A note with its language (RFC 3863 §4.1.6: xml:lang on note). */
export interface PidfNote {
  text: string;
  lang?: string;
}

export interface PidfPerson {
  id: string;
  activities: PidfActivity[];
  notes: string[];
  /** Notes written after `notes`, each with its xml:lang when known (building only; parse fills `notes`). */
  langNotes?: PidfNote[];
  userInput?: 'active' | 'idle';
  timestamp?: string;
  /** xs:dateTime the activities end (RFC 4480 §3.2: `until` on rpid:activities). */
  activitiesUntil?: string;
}

export interface PidfDocument {
  entity: string;
  tuples: PidfTuple[];
  persons: PidfPerson[];
  notes: string[];
}

export interface BuildPidfOptions {
  /** 'cisco' declares the ce namespace and always writes a person's activities element. */
  flavor?: 'rfc' | 'cisco';
}

// ---------------------------------------------------------------------------
// Parse

/** Parse a PIDF body. Throws BodyError (400 malformed, 413 oversize, 415 not PIDF). */
export function parsePidf(body: Buffer | string, options?: ParseXmlOptions): PidfDocument {
  const root = parseXml(body, options);
  const pidfNs = root.ns;
  if (root.name !== 'presence' || (pidfNs !== NS_PIDF && pidfNs !== NS_CPIM_PIDF)) {
    throw new BodyError(415, `not a PIDF document (root ${describe(root)})`);
  }
  // RFC 3863 §4.1.1: entity is mandatory.
  const entity = attrValue(root, 'entity');
  if (entity === undefined) throw new BodyError(400, 'PIDF presence element has no entity');

  const doc: PidfDocument = { entity, tuples: [], persons: [], notes: [] };
  for (const child of root.children) {
    if (child.ns === pidfNs) {
      if (child.name === 'tuple') doc.tuples.push(readTuple(child, pidfNs));
      else if (child.name === 'note') pushNote(doc.notes, child);
    } else if (child.ns === NS_DATA_MODEL && child.name === 'person') {
      doc.persons.push(readPerson(child, pidfNs));
    }
    // anything else (devices, extensions) is ignored
  }
  return doc;
}

function describe(el: XmlElement): string {
  return el.ns.length > 0 ? `{${el.ns}}${el.name}` : el.name;
}

function readTuple(el: XmlElement, pidfNs: string): PidfTuple {
  // RFC 3863 §4.1.2: id is mandatory.
  const id = attrValue(el, 'id');
  if (id === undefined) throw new BodyError(400, 'PIDF tuple has no id');
  const tuple: PidfTuple = { id, notes: [], activities: [] };
  for (const child of el.children) {
    if (isActivities(child)) {
      readActivities(child, tuple.activities);
      continue;
    }
    if (child.ns !== pidfNs) continue;
    switch (child.name) {
      case 'status':
        readStatus(child, tuple, pidfNs);
        break;
      case 'contact':
        if (tuple.contact === undefined) {
          const contact = textValue(child);
          if (contact !== undefined) {
            tuple.contact = contact;
            const priority = readPriority(child.attrs.get('priority'));
            if (priority !== undefined) tuple.contactPriority = priority;
          }
        }
        break;
      case 'note':
        pushNote(tuple.notes, child);
        break;
      case 'timestamp': {
        const ts = textValue(child);
        if (ts !== undefined && tuple.timestamp === undefined) tuple.timestamp = ts;
        break;
      }
    }
  }
  return tuple;
}

function readStatus(el: XmlElement, tuple: PidfTuple, pidfNs: string): void {
  for (const child of el.children) {
    if (child.ns === pidfNs && child.name === 'basic' && tuple.basic === undefined) {
      const value = textValue(child)?.toLowerCase();
      if (value === 'open' || value === 'closed') tuple.basic = value;
    } else if (isActivities(child)) {
      // Early RPID drafts put activities inside status.
      readActivities(child, tuple.activities);
    }
  }
}

function readPriority(raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const trimmed = raw.trim();
  if (trimmed.length === 0) return undefined;
  const n = Number(trimmed);
  // RFC 3863 §4.1.4: a decimal between 0 and 1.
  return Number.isFinite(n) && n >= 0 && n <= 1 ? n : undefined;
}

/** xs:dateTime with a zone (Z or ±hh:mm), as RPID's from/until carry it. */
const XS_DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

function readPerson(el: XmlElement, pidfNs: string): PidfPerson {
  const person: PidfPerson = { id: attrValue(el, 'id') ?? '', activities: [], notes: [] };
  for (const child of el.children) {
    if (isActivities(child)) {
      readActivities(child, person.activities);
      const until = attrValue(child, 'until');
      if (until !== undefined && XS_DATE_TIME.test(until)) person.activitiesUntil = until;
    } else if (child.name === 'note' && (child.ns === NS_DATA_MODEL || child.ns === pidfNs)) {
      pushNote(person.notes, child);
    } else if (child.name === 'timestamp' && child.ns === NS_DATA_MODEL) {
      const ts = textValue(child);
      if (ts !== undefined && person.timestamp === undefined) person.timestamp = ts;
    } else if (child.name === 'user-input' && isRpidNamespace(child.ns)) {
      const value = textValue(child)?.toLowerCase();
      if (value === 'active' || value === 'idle') person.userInput = value;
    }
  }
  return person;
}

function isActivities(el: XmlElement): boolean {
  return el.name === 'activities' && (isRpidNamespace(el.ns) || el.ns === NS_CISCO_RPID);
}

function readActivities(el: XmlElement, out: PidfActivity[]): void {
  for (const child of el.children) {
    const rpid = isRpidNamespace(child.ns);
    if (rpid && child.name === 'note') continue; // describes the activities, is not one
    const activity: PidfActivity = { name: child.name, ns: rpid ? 'rpid' : child.ns === NS_CISCO_RPID ? 'cisco' : child.ns };
    if (child.name === 'other') {
      const text = textValue(child);
      if (text !== undefined) activity.text = text;
    }
    out.push(activity);
  }
}

function pushNote(notes: string[], el: XmlElement): void {
  const text = textValue(el);
  if (text !== undefined) notes.push(text);
}

// ---------------------------------------------------------------------------
// Build

const XML_DECL = '<?xml version="1.0" encoding="UTF-8"?>\n';
const ROOT_OPEN = `<presence xmlns="${NS_PIDF}" xmlns:dm="${NS_DATA_MODEL}" xmlns:rpid="${NS_RPID}"`;
const CE_DECL = ` xmlns:ce="${NS_CISCO_RPID}"`;
/** BCP 47 language tag shape (RFC 5646), enough to keep the attribute well-formed. */
const LANG_TAG = /^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$/;
const NC_NAME = /^[A-Za-z_\u00c0-\uffef][\w.\-\u00b7\u00c0-\uffef]*$/;

/**
 * Serialize a PIDF document. Element order follows the schemas: tuples, notes,
 * then persons (RFC 3863 §4.1); in a tuple status, extensions, contact, notes,
 * timestamp; in a person activities, user-input, notes, timestamp (RFC 4479).
 */
export function buildPidf(doc: PidfDocument, options?: BuildPidfOptions): string {
  const cisco = options?.flavor === 'cisco';
  let out = XML_DECL + ROOT_OPEN;
  if (cisco || usesCisco(doc)) out += CE_DECL;
  out += ` entity="${escapeXml(doc.entity)}">`;
  for (const t of doc.tuples) out += tupleXml(t);
  for (const n of doc.notes) out += `<note>${escapeXml(n)}</note>`;
  for (const p of doc.persons) out += personXml(p, cisco);
  return out + '</presence>';
}

function usesCisco(doc: PidfDocument): boolean {
  for (const p of doc.persons) for (const a of p.activities) if (isCisco(a.ns)) return true;
  for (const t of doc.tuples) for (const a of t.activities) if (isCisco(a.ns)) return true;
  return false;
}

function isCisco(ns: string): boolean {
  return ns === 'cisco' || ns === NS_CISCO_RPID;
}

function tupleXml(t: PidfTuple): string {
  let out = `<tuple id="${escapeXml(t.id)}"><status>`;
  if (t.basic !== undefined) out += `<basic>${t.basic}</basic>`;
  out += '</status>';
  if (t.activities.length > 0) out += activitiesXml(t.activities);
  if (t.contact !== undefined) {
    const p = t.contactPriority;
    out +=
      p !== undefined && Number.isFinite(p) && p >= 0 && p <= 1
        ? `<contact priority="${p}">${escapeXml(t.contact)}</contact>`
        : `<contact>${escapeXml(t.contact)}</contact>`;
  }
  for (const n of t.notes) out += `<note>${escapeXml(n)}</note>`;
  if (t.timestamp !== undefined) out += `<timestamp>${escapeXml(t.timestamp)}</timestamp>`;
  return out + '</tuple>';
}

function personXml(p: PidfPerson, cisco: boolean): string {
  // The schema requires an id; make one up rather than write an invalid document.
  let out = `<dm:person id="${p.id.length > 0 ? escapeXml(p.id) : 'p'}">`;
  const until = p.activitiesUntil !== undefined && XS_DATE_TIME.test(p.activitiesUntil) ? p.activitiesUntil : undefined;
  if (p.activities.length > 0 || cisco) out += activitiesXml(p.activities, until);
  if (p.userInput !== undefined) out += `<rpid:user-input>${p.userInput}</rpid:user-input>`;
  for (const n of p.notes) out += `<dm:note>${escapeXml(n)}</dm:note>`;
  for (const n of p.langNotes ?? []) {
    out += n.lang !== undefined && LANG_TAG.test(n.lang) ? `<dm:note xml:lang="${n.lang}">${escapeXml(n.text)}</dm:note>` : `<dm:note>${escapeXml(n.text)}</dm:note>`;
  }
  if (p.timestamp !== undefined) out += `<dm:timestamp>${escapeXml(p.timestamp)}</dm:timestamp>`;
  return out + '</dm:person>';
}

/** `until` (RFC 4480 §3.2): when the activities are expected to end; written only with activities to end. */
function activitiesXml(activities: readonly PidfActivity[], until?: string): string {
  if (activities.length === 0) return '<rpid:activities/>';
  let out = until === undefined ? '<rpid:activities>' : `<rpid:activities until="${until}">`;
  for (const a of activities) out += activityXml(a);
  return out + '</rpid:activities>';
}

function activityXml(a: PidfActivity): string {
  if (!NC_NAME.test(a.name)) return ''; // cannot be written as an element name
  let qname: string;
  let decl = '';
  if (isCisco(a.ns)) qname = 'ce:' + a.name;
  else if (a.ns === 'rpid' || a.ns === '' || isRpidNamespace(a.ns)) qname = 'rpid:' + a.name;
  else {
    qname = 'x:' + a.name;
    decl = ` xmlns:x="${escapeXml(a.ns)}"`;
  }
  return a.text !== undefined && a.text.length > 0
    ? `<${qname}${decl}>${escapeXml(a.text)}</${qname}>`
    : `<${qname}${decl}/>`;
}
