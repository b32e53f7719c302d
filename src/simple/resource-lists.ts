/**
 * The resource list server (RFC 4662): configured groups of people served as
 * list URIs for the packages that declare `lists` (`presence`, `dialog`). A list subscription is
 * an ordinary notifier subscription whose bodies this module renders:
 * multipart/related with an RLMI root and one part per member, the member
 * parts rendered by the subscription's own package in its negotiated format.
 *
 * Full state first (and after a refresh or a failed NOTIFY), then partial
 * state: member changes are gathered per list for `batchMs` and each
 * subscription collects the members it has not been sent yet, so nothing is
 * lost while one of its NOTIFYs is outstanding. A member change costs
 * O(lists containing the member).
 */
import { buildMultipartRelated, type MimePart } from '../bodies/multipart.js';
import { buildRlmi, RLMI_CONTENT_TYPE, type RlmiInstance, type RlmiResource } from '../bodies/rlmi.js';
import { CLIENT_LISTS_DEFAULTS, type ClientListsConfig, type ListsConfig } from './lists-config.js';
import type { MediaType } from '../sip/header-values.js';
import type { SipRequest, SipResponse } from '../sip/message.js';
import { parseUri } from '../sip/uri.js';
import { hasOptionTag } from '../sip/option-tags.js';
import { systemClock, type Clock } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import { chooseContentType, type EventPackage } from './event-package.js';
import type { ListHooks, Notifier } from './notifier.js';
import { reply } from './sip-util.js';
import type { ClientListRecord } from '../store/records.js';
import type { ListState, Subscription, TerminationCause } from './subscription.js';
import { isClientListSubscribe, readClientList, RECIPIENT_LIST_SUBSCRIBE } from './client-list-body.js';

export const EVENTLIST = 'eventlist';
const MULTIPART_RELATED = 'multipart/related';
const RLMI_PART_TYPE = `${RLMI_CONTENT_TYPE};charset="UTF-8"`;
const BINARY: [string, string] = ['Content-Transfer-Encoding', 'binary'];

/** Who the members are (the Directory fits). */
export interface ListMemberDirectory {
  get(id: string): { displayName: string } | undefined;
  primaryAor(id: string): string | undefined;
  isLocalHost(host: string): boolean;
  /** The person a SIP URI names (for client lists; without it their entries are all unknown). */
  findBySip?(user: string | undefined, host: string): { id: string } | undefined;
}

/** Schedules `fn` after `ms`; returns a cancel function. */
export type BatchScheduler = (fn: () => void, ms: number) => () => void;

const defaultScheduler: BatchScheduler = (fn, ms) => {
  const t = setTimeout(fn, ms);
  t.unref();
  return () => clearTimeout(t);
};

interface ListDef {
  readonly name: string;
  /** Notifier resource id: `list:<name>` (person ids cannot hold a colon). */
  readonly resource: string;
  readonly uri: string;
  readonly host: string;
  readonly displayName: string | undefined;
  /** Right part of Content-IDs: the list host as a dot-atom. */
  readonly cidDomain: string;
  readonly members: readonly string[];
  /** Member id → position in `members`. */
  readonly position: ReadonlyMap<string, number>;
  /** Members changed since the last batch went out. */
  changed: Set<string>;
  cancelBatch: (() => void) | undefined;
  /** A client list (RFC 5367): the URIs and names as the subscriber wrote them, by member position. */
  client?: { uris: readonly string[]; names: ReadonlyArray<string | undefined>; createdAt: number };
}

/** A client list no subscription took within this time is dropped (a refused or fetch-only SUBSCRIBE). */
const CLIENT_LIST_ORPHAN_MS = 60_000;

const INSTANCE_REASON: Readonly<Record<TerminationCause, string | undefined>> = {
  timeout: 'timeout',
  unsubscribed: undefined,
  fetch: undefined,
  noresource: 'noresource',
  rejected: 'rejected',
  'notify-failed': undefined,
  moved: undefined,
};

/** Content-ID left part: dot-atom text only (RFC 2392 / RFC 5322 §3.2.3). */
function cidToken(s: string): string {
  return s.replace(/[^A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]/g, '-');
}


/** One subscription's view of its list: what it has not been sent yet. */
export class ListSubscription implements ListState {
  /** The next NOTIFY carries the full state. */
  private full = true;
  /** Members changed since this subscription's last NOTIFY. */
  private pending: Set<string> | undefined = undefined;
  /** Per-member body version (RFC 4235 §4.1 counts per resource), made on first use. */
  private versions: Uint32Array | undefined = undefined;

  constructor(
    private readonly def: ListDef,
    private readonly directory: ListMemberDirectory,
  ) {}

  get listName(): string {
    return this.def.name;
  }

  /** True while the next NOTIFY would carry the full state. */
  get fullStatePending(): boolean {
    return this.full;
  }

  /** A client list's URI and entries as the subscriber sent them (kept for a restart). */
  clientList(): ClientListRecord | undefined {
    const c = this.def.client;
    if (c === undefined) return undefined;
    return {
      uri: this.def.uri,
      entries: c.uris.map((uri, i) => {
        const name = c.names[i];
        return name === undefined ? { uri } : { uri, displayName: name };
      }),
    };
  }

  /** Members waiting to be sent in the next partial NOTIFY. */
  pendingMembers(): string[] {
    return this.pending === undefined ? [] : [...this.pending];
  }

  /** The next NOTIFY carries the full state (refresh, a refused NOTIFY). */
  fullStateNext(): void {
    this.full = true;
    this.pending = undefined;
  }

  /** Members whose state changed. */
  changed(members: ReadonlySet<string>): void {
    if (this.full) return; // the full state will carry them
    if (this.pending === undefined) this.pending = new Set(members);
    else for (const m of members) this.pending.add(m);
  }

  /** The multipart/related body for the next NOTIFY of `sub`, and its Content-Type. */
  render(sub: Subscription): { body: Buffer; contentType: string } {
    const def = this.def;
    const ending = sub.state === 'terminated' && sub.cause !== 'fetch';
    // RFC 4662 §4.5: the first NOTIFY carries the full state, later ones what changed.
    const full = this.full || ending;
    let members: readonly string[];
    if (full) members = def.members;
    else if (this.pending === undefined) members = [];
    else {
      const pending = this.pending;
      members = def.members.filter((m) => pending.has(m));
    }
    this.full = false;
    this.pending = undefined;

    const token = `${cidToken(sub.localTag)}.${sub.version}`;
    const domain = def.cidDomain;
    const rootCid = `list.${token}@${domain}`;
    const parts: MimePart[] = [];
    const resources: RlmiResource[] = [];
    for (const id of members) {
      const person = this.directory.get(id);
      const at = def.position.get(id) ?? 0;
      const uri = def.client?.uris[at] ?? this.directory.primaryAor(id) ?? `sip:${id}@${def.host}`;
      const name = def.client?.names[at] ?? person?.displayName;
      const resource: RlmiResource = { uri, names: name === undefined ? [] : [{ value: name }], instances: [] };
      resources.push(resource);
      const instance: RlmiInstance = { id: cidToken(id), state: 'active' };
      resource.instances.push(instance);
      if (person === undefined || ending) {
        instance.state = 'terminated';
        const reason = person === undefined ? 'noresource' : INSTANCE_REASON[sub.cause ?? 'timeout'];
        if (reason !== undefined) instance.reason = reason;
        continue;
      }
      const index = def.position.get(id) ?? 0;
      const versions = (this.versions ??= new Uint32Array(def.members.length));
      const body = sub.pkg.render(id, { entity: uri, format: sub.format, version: versions[index]! });
      versions[index] = versions[index]! + 1;
      instance.cid = `m${index}.${token}@${domain}`;
      parts.push({ contentType: sub.format.contentType, contentId: instance.cid, headers: [BINARY], body });
    }
    const rlmi = buildRlmi({
      uri: def.uri,
      version: sub.version,
      fullState: full,
      names: def.displayName === undefined ? [] : [{ value: def.displayName }],
      resources,
    });
    // RFC 4662 §5: the RLMI document is the root (first) part of multipart/related.
    parts.unshift({ contentType: RLMI_PART_TYPE, contentId: rootCid, headers: [BINARY], body: Buffer.from(rlmi, 'utf8') });
    const built = buildMultipartRelated(parts, { type: RLMI_CONTENT_TYPE, start: rootCid });
    return { body: built.body, contentType: built.contentType };
  }
}

export interface ResourceListsOptions {
  notifier: Notifier;
  directory: ListMemberDirectory;
  config: ListsConfig;
  logger: Logger;
  /** Batch timer (tests pass a manual one); default setTimeout, unref'd. */
  schedule?: BatchScheduler;
  /** Subscribe to person changes (PresenceHub.onChange); without it call memberChanged yourself. */
  onChange?: (listener: (personId: string) => void) => () => void;
  /** The clock (client list bookkeeping); default systemClock. */
  clock?: Pick<Clock, 'now'>;
}

export interface ListSummary {
  name: string;
  uri: string;
  members: number;
  watchers: number;
}

export class ResourceLists implements ListHooks {
  private readonly byResource = new Map<string, ListDef>();
  /** `user@host` of each list URI (host lower-case). */
  private readonly byAor = new Map<string, ListDef>();
  /** user part of each list URI, for requests to any local host (sip:sales@10.0.0.5). */
  private readonly byUser = new Map<string, ListDef>();
  private readonly byMember = new Map<string, ListDef[]>();
  private readonly notifier: Notifier;
  private readonly directory: ListMemberDirectory;
  private readonly logger: Logger;
  private readonly schedule: BatchScheduler;
  private readonly batchMs: number;
  private readonly unsubscribe: (() => void) | undefined;
  private closed = false;
  private readonly clientConfig: ClientListsConfig;
  private readonly clientDefs = new Map<string, ListDef>();
  private clientSeq = 0;
  private readonly clock: Pick<Clock, 'now'>;
  readonly optionTags: readonly string[];

  constructor(options: ResourceListsOptions) {
    this.clientConfig = options.config.clientLists ?? CLIENT_LISTS_DEFAULTS;
    this.optionTags = this.clientConfig.enabled ? [RECIPIENT_LIST_SUBSCRIBE] : [];
    this.clock = options.clock ?? systemClock;
    this.notifier = options.notifier;
    this.directory = options.directory;
    this.logger = options.logger;
    this.schedule = options.schedule ?? defaultScheduler;
    this.batchMs = options.config.batchMs;
    for (const g of options.config.groups) {
      const uri = parseUri(g.uri);
      if (uri === null || uri.user === undefined) throw new Error(`lists.groups[${g.name}].uri: "${g.uri}" is not a SIP URI with a user part`);
      const host = uri.host.toLowerCase();
      const def: ListDef = {
        name: g.name,
        resource: `list:${g.name}`,
        uri: `${uri.scheme}:${uri.user}@${host}`,
        host,
        displayName: g.displayName,
        cidDomain: host.replace(/[^A-Za-z0-9.-]/g, '-').replace(/^\.+|\.+$/g, '').replace(/\.{2,}/g, '.') || 'list',
        members: [...g.members],
        position: new Map(g.members.map((m, i) => [m, i])),
        changed: new Set(),
        cancelBatch: undefined,
      };
      this.byResource.set(def.resource, def);
      this.byAor.set(`${uri.user}@${host}`, def);
      if (!this.byUser.has(uri.user)) this.byUser.set(uri.user, def);
      for (const m of def.members) {
        let lists = this.byMember.get(m);
        if (lists === undefined) {
          lists = [];
          this.byMember.set(m, lists);
        }
        lists.push(def);
        if (this.directory.get(m) === undefined) this.logger.warn({ list: def.name, user: m }, 'list member is not a configured user');
      }
    }
    this.notifier.attachLists(this);
    this.unsubscribe = options.onChange?.((personId) => this.memberChanged(personId));
  }

  // ListHooks -----------------------------------------------------------------

  match(user: string | undefined, host: string, event: string): string | undefined {
    if (user === undefined || this.byResource.size === 0 || this.notifier.packages.get(event)?.lists === undefined) return undefined;
    const h = host.toLowerCase();
    const exact = this.byAor.get(`${user}@${h}`);
    if (exact !== undefined) return exact.resource;
    if (!this.directory.isLocalHost(h)) return undefined;
    return this.byUser.get(user)?.resource;
  }

  refuse(request: SipRequest, accept: readonly MediaType[] | undefined, pkg: EventPackage): SipResponse | undefined {
    // RFC 4662 §4.1: a subscriber to a list must say it supports eventlist.
    if (!hasOptionTag(request.headers, 'supported', EVENTLIST)) {
      return reply(request, 421, [['require', EVENTLIST]], { reason: 'Extension Required' });
    }
    // RFC 4662 §4.3: the watcher must take multipart/related with RLMI, and the members' format.
    if (
      accept !== undefined &&
      (chooseContentType(accept, [MULTIPART_RELATED]) === undefined ||
        chooseContentType(accept, [RLMI_CONTENT_TYPE]) === undefined ||
        pkg.negotiate(accept) === undefined)
    ) {
      return reply(request, 406, [['accept', [MULTIPART_RELATED, RLMI_CONTENT_TYPE, ...pkg.contentTypes].join(', ')]]);
    }
    return undefined;
  }

  clientList(request: SipRequest, event: string): { ok: true; resource: string } | { ok: false; response: SipResponse } | undefined {
    if (!this.clientConfig.enabled || !isClientListSubscribe(request)) return undefined;
    if (this.notifier.packages.get(event)?.lists === undefined) {
      const served = this.notifier.packages.listEvents.join(' and ');
      return { ok: false, response: reply(request, 400, undefined, { reason: `Bad Request - client lists are served for ${served}, not ${event}` }) };
    }
    const target = parseUri(request.uri);
    if (target === null || !this.directory.isLocalHost(target.host)) {
      return { ok: false, response: reply(request, 404, undefined, { reason: 'Not Found - no list service at this URI' }) };
    }
    const read = readClientList(request, this.clientConfig.maxResources);
    if (!read.ok) return read;
    this.sweepClientLists();
    const host = target.host.toLowerCase();
    const uri = `${target.scheme}:${target.user === undefined ? '' : `${target.user}@`}${host}`;
    const def = this.addClientList(`client:${++this.clientSeq}`, uri, host, read.entries);
    this.logger.info({ list: def.resource, resources: def.members.length, callId: request.headers.get('call-id') }, 'client resource list');
    return { ok: true, resource: def.resource };
  }

  /**
   * A client list saved with its subscription, back after a restart under the
   * same resource id (persistence-wiring.ts); false when it cannot be (lists
   * disabled now, an id that is no client list's, one already there).
   */
  restoreClientList(resource: string, saved: ClientListRecord): boolean {
    const seq = /^client:(\d+)$/.exec(resource);
    if (!this.clientConfig.enabled || seq === null || this.byResource.has(resource)) return false;
    const uri = parseUri(saved.uri);
    if (uri === null || saved.entries.length > this.clientConfig.maxResources) return false;
    this.clientSeq = Math.max(this.clientSeq, Number(seq[1]));
    this.addClientList(resource, saved.uri, uri.host.toLowerCase(), saved.entries);
    return true;
  }

  private addClientList(resource: string, uri: string, host: string, entries: ReadonlyArray<{ uri: string; displayName?: string }>): ListDef {
    const members: string[] = [];
    const uris: string[] = [];
    const names: Array<string | undefined> = [];
    const used = new Set<string>();
    for (const [i, entry] of entries.entries()) {
      const u = parseUri(entry.uri);
      const person = u === null ? undefined : this.directory.findBySip?.(u.user, u.host);
      // Unknown entries stay in the list, shown terminated with reason noresource (RFC 4662 §5.2).
      let id = person?.id ?? `?${i}`;
      if (used.has(id)) id = `?${i}`;
      used.add(id);
      members.push(id);
      uris.push(entry.uri);
      names.push(entry.displayName);
    }
    const def: ListDef = {
      name: `client-${resource.slice('client:'.length)}`,
      resource,
      uri,
      host,
      displayName: undefined,
      cidDomain: host.replace(/[^A-Za-z0-9.-]/g, '-').replace(/^\.+|\.+$/g, '').replace(/\.{2,}/g, '.') || 'list',
      members,
      position: new Map(members.map((m, i) => [m, i])),
      changed: new Set(),
      cancelBatch: undefined,
      client: { uris, names, createdAt: this.clock.now() },
    };
    this.byResource.set(def.resource, def);
    this.clientDefs.set(def.resource, def);
    for (const m of members) if (!m.startsWith('?')) this.addMember(m, def);
    return def;
  }

  released(resource: string): void {
    const def = this.clientDefs.get(resource);
    if (def !== undefined) this.dropClientList(def);
  }

  /** Client lists whose SUBSCRIBE was refused after the list was read, or was a fetch. */
  private sweepClientLists(): void {
    const cutoff = this.clock.now() - CLIENT_LIST_ORPHAN_MS;
    for (const def of this.clientDefs.values()) {
      if (def.client!.createdAt > cutoff) break; // in creation order
      if (this.notifier.watchers(def.resource).length === 0) this.dropClientList(def);
    }
  }

  private dropClientList(def: ListDef): void {
    this.clientDefs.delete(def.resource);
    this.byResource.delete(def.resource);
    def.cancelBatch?.();
    def.cancelBatch = undefined;
    for (const m of def.members) {
      const lists = this.byMember.get(m);
      if (lists === undefined) continue;
      const i = lists.indexOf(def);
      if (i >= 0) lists.splice(i, 1);
      if (lists.length === 0) this.byMember.delete(m);
    }
  }

  private addMember(member: string, def: ListDef): void {
    let lists = this.byMember.get(member);
    if (lists === undefined) {
      lists = [];
      this.byMember.set(member, lists);
    }
    lists.push(def);
  }

  listsContaining(member: string): readonly string[] {
    return (this.byMember.get(member) ?? []).map((d) => d.resource);
  }

  membersOf(resource: string): readonly string[] {
    return (this.byResource.get(resource)?.members ?? []).filter((m) => !m.startsWith('?'));
  }

  /** Client lists alive now (diagnostics, tests). */
  get clientListCount(): number {
    return this.clientDefs.size;
  }

  open(resource: string, _sub: Subscription): ListSubscription {
    const def = this.byResource.get(resource);
    if (def === undefined) throw new Error(`no resource list "${resource}"`);
    return new ListSubscription(def, this.directory);
  }

  // Member changes --------------------------------------------------------------

  /** A person's state changed (store.onChange): O(lists containing them). */
  memberChanged(personId: string): void {
    if (this.closed) return;
    const lists = this.byMember.get(personId);
    if (lists === undefined) return;
    for (const def of lists) {
      def.changed.add(personId);
      // RFC 4662 §4.8: changes within the batch window go out in one NOTIFY.
      def.cancelBatch ??= this.schedule(() => this.flush(def), this.batchMs);
    }
  }

  private flush(def: ListDef): void {
    def.cancelBatch = undefined;
    if (this.closed || def.changed.size === 0) return;
    const changed = def.changed;
    def.changed = new Set();
    const watchers = this.notifier.watchers(def.resource);
    if (watchers.length === 0) return;
    for (const sub of watchers) sub.list?.changed(changed);
    this.notifier.resourceChanged(def.resource);
  }

  /** The configured lists and their live subscriptions (diagnostics). */
  summary(): ListSummary[] {
    return [...this.byResource.values()].filter((d) => d.client === undefined).map((d) => ({
      name: d.name,
      uri: d.uri,
      members: d.members.length,
      watchers: this.notifier.watchers(d.resource).length,
    }));
  }

  /** Stop batching and serving lists (live list subscriptions stay, like the notifier's). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.unsubscribe?.();
    for (const def of this.byResource.values()) {
      def.cancelBatch?.();
      def.cancelBatch = undefined;
      def.changed.clear();
    }
    this.notifier.attachLists(undefined);
  }
}

/**
 * Serve the configured lists on `notifier`, fed by `onChange` (the
 * PresenceHub's). close() stops batching and listening.
 */
export function attachResourceLists(
  notifier: Notifier,
  onChange: (listener: (personId: string) => void) => () => void,
  config: ListsConfig,
  options: { directory: ListMemberDirectory; logger: Logger; schedule?: BatchScheduler; clock?: Pick<Clock, 'now'> },
): ResourceLists {
  return new ResourceLists({ notifier, onChange, config, ...options });
}
