/**
 * RFC 3858 watcher information documents (application/watcherinfo+xml): who
 * watches a resource in one event package, full or partial state.
 */
import { BodyError } from './errors.js';
import { NS_WATCHERINFO } from './namespaces.js';
import { attrValue, escapeXml, parseXml, type ParseXmlOptions } from './xml.js';

export const WATCHERINFO_CONTENT_TYPE = 'application/watcherinfo+xml';

/** RFC 3857 §3.2.x watcher subscription states and the events that lead there. */
export type WatcherStatus = 'pending' | 'active' | 'waiting' | 'terminated';
export type WatcherEventName = 'subscribe' | 'approved' | 'deactivated' | 'probation' | 'rejected' | 'timeout' | 'giveup' | 'noresource';

export interface WatcherEntry {
  /** Unique per watcher subscription within the list (we use the subscription's tag). */
  id: string;
  status: WatcherStatus;
  event: WatcherEventName;
  /** The watcher's URI (its From AoR). */
  uri: string;
  displayName?: string;
  /** Seconds the watcher has been subscribed. */
  durationSubscribed?: number;
  /** Seconds left until the subscription expires. */
  expiration?: number;
}

export interface WatcherList {
  /** The watched resource's URI. */
  resource: string;
  /** The event package watched (e.g. presence). */
  package: string;
  watchers: WatcherEntry[];
}

export interface WatcherInfoDocument {
  version: number;
  state: 'full' | 'partial';
  lists: WatcherList[];
}

const STATUSES: ReadonlySet<string> = new Set(['pending', 'active', 'waiting', 'terminated']);
const EVENTS: ReadonlySet<string> = new Set(['subscribe', 'approved', 'deactivated', 'probation', 'rejected', 'timeout', 'giveup', 'noresource']);

export function buildWatcherInfo(doc: WatcherInfoDocument): string {
  let out = `<?xml version="1.0" encoding="UTF-8"?>\n<watcherinfo xmlns="${NS_WATCHERINFO}" version="${doc.version}" state="${doc.state}">`;
  for (const list of doc.lists) {
    out += `<watcher-list resource="${escapeXml(list.resource)}" package="${escapeXml(list.package)}">`;
    for (const w of list.watchers) {
      out += `<watcher id="${escapeXml(w.id)}" status="${w.status}" event="${w.event}"`;
      if (w.displayName !== undefined) out += ` display-name="${escapeXml(w.displayName)}"`;
      if (w.durationSubscribed !== undefined) out += ` duration-subscribed="${Math.max(0, Math.floor(w.durationSubscribed))}"`;
      if (w.expiration !== undefined) out += ` expiration="${Math.max(0, Math.floor(w.expiration))}"`;
      out += `>${escapeXml(w.uri)}</watcher>`;
    }
    out += '</watcher-list>';
  }
  return out + '</watcherinfo>';
}

/** Parse a watcherinfo document (tests, consoles). BodyError 400/415. */
export function parseWatcherInfo(body: Buffer | string, options?: ParseXmlOptions): WatcherInfoDocument {
  const root = parseXml(body, options);
  if (root.name !== 'watcherinfo' || root.ns !== NS_WATCHERINFO) throw new BodyError(415, 'not a watcherinfo document');
  const version = Number(attrValue(root, 'version'));
  const state = attrValue(root, 'state');
  if (!Number.isInteger(version) || version < 0 || (state !== 'full' && state !== 'partial')) {
    throw new BodyError(400, 'watcherinfo: version and state (full or partial) are required');
  }
  const lists: WatcherList[] = [];
  for (const l of root.children) {
    if (l.ns !== NS_WATCHERINFO || l.name !== 'watcher-list') continue;
    const resource = attrValue(l, 'resource');
    const pkg = attrValue(l, 'package');
    if (resource === undefined || pkg === undefined) throw new BodyError(400, 'watcherinfo: watcher-list needs resource and package');
    const watchers: WatcherEntry[] = [];
    for (const w of l.children) {
      if (w.ns !== NS_WATCHERINFO || w.name !== 'watcher') continue;
      const id = attrValue(w, 'id');
      const status = attrValue(w, 'status');
      const event = attrValue(w, 'event');
      if (id === undefined || status === undefined || !STATUSES.has(status) || event === undefined || !EVENTS.has(event)) {
        throw new BodyError(400, 'watcherinfo: watcher needs id, status and event');
      }
      const entry: WatcherEntry = { id, status: status as WatcherStatus, event: event as WatcherEventName, uri: w.text.trim() };
      const dn = attrValue(w, 'display-name');
      if (dn !== undefined) entry.displayName = dn;
      const ds = attrValue(w, 'duration-subscribed');
      if (ds !== undefined) entry.durationSubscribed = Number(ds);
      const ex = attrValue(w, 'expiration');
      if (ex !== undefined) entry.expiration = Number(ex);
      watchers.push(entry);
    }
    lists.push({ resource, package: pkg, watchers });
  }
  return { version, state, lists };
}
