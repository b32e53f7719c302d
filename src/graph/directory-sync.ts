/**
 * Who each person is in Teams: lists the tenant's users, keeps the
 * Teams-licensed ones when configured (judged here from assignedPlans, so a
 * person left out can be told why), matches them to the gateway's persons by
 * the configured fields, applies the static table first, and records the
 * result with Directory.setTeamsIdentity. Later runs use the users delta
 * query, whose link is taken before the full listing so nothing that changes
 * during the listing is lost. Everything left unmatched on either side is
 * logged and returned, each unmatched person with the reason.
 */
import type { Client } from '@microsoft/microsoft-graph-client';
import type { Directory, Person } from '../core/directory.js';
import type { Logger } from '../util/logger.js';
import { graphFailure, isRecord } from './client.js';
import type { GraphConfig, GraphMatchField, SipMatchField } from './config.js';

/** The commercial Teams service plan (TEAMS1); config.teamsServicePlanIds lists all that count. */
export const TEAMS_SERVICE_PLAN_ID = '57ff2da0-773e-42df-b2af-ffb7a2317929';

export interface GraphUser {
  id: string;
  displayName?: string | null;
  userPrincipalName?: string | null;
  mail?: string | null;
  mailNickname?: string | null;
  businessPhones?: string[] | null;
  onPremisesSamAccountName?: string | null;
  assignedPlans?: Array<{ servicePlanId?: string; capabilityStatus?: string }> | null;
}

export interface DirectoryMatch {
  personId: string;
  userId: string;
  upn?: string;
  /** the user's primary SMTP address (user.mail), when Graph gave one */
  mail?: string;
  via: 'static' | 'match';
}

export interface DirectorySyncResult {
  matched: DirectoryMatch[];
  /** persons with no Teams user this run (those keeping an identity from before are in `kept`) */
  unmatchedPersons: string[];
  /** persons not matched this run who keep the identity they had */
  kept: string[];
  /** why each person in unmatchedPersons has no Teams identity */
  excluded: Array<{ personId: string; reason: string }>;
  unmatchedUsers: Array<{ id: string; upn?: string; displayName?: string }>;
  /** ambiguous keys, static entries that name nobody, identities already taken */
  conflicts: string[];
  usersListed: number;
  mode: 'full' | 'delta';
}

export type DirectoryConfig = GraphConfig['directory'];

function text(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

function toUser(v: unknown): GraphUser | undefined {
  if (!isRecord(v) || typeof v['id'] !== 'string') return undefined;
  const u: GraphUser = { id: v['id'].toLowerCase() };
  for (const k of ['displayName', 'userPrincipalName', 'mail', 'mailNickname', 'onPremisesSamAccountName'] as const) {
    const s = v[k];
    if (typeof s === 'string' || s === null) u[k] = s;
  }
  if (Array.isArray(v['businessPhones'])) u.businessPhones = v['businessPhones'].filter((p): p is string => typeof p === 'string');
  if (Array.isArray(v['assignedPlans'])) u.assignedPlans = v['assignedPlans'].filter(isRecord).map((p) => ({ ...(typeof p['servicePlanId'] === 'string' ? { servicePlanId: p['servicePlanId'] } : {}), ...(typeof p['capabilityStatus'] === 'string' ? { capabilityStatus: p['capabilityStatus'] } : {}) }));
  return u;
}

// Graph: assignedPlan resource (capabilityStatus Enabled, Warning, Suspended, Deleted, LockedOut); Warning is a
// licence in its grace period and still works, so both Enabled and Warning count
const USABLE_STATUS = new Set(['enabled', 'warning']);

/** Undefined when `u` holds a usable Teams plan; otherwise why not. */
export function teamsLicenceProblem(u: GraphUser, planIds: ReadonlySet<string>): string | undefined {
  const plans = (u.assignedPlans ?? []).filter((p) => p.servicePlanId !== undefined && planIds.has(p.servicePlanId.toLowerCase()));
  if (plans.some((p) => USABLE_STATUS.has((p.capabilityStatus ?? '').toLowerCase()))) return undefined;
  if (plans.length === 0) return 'has no Teams service plan (graph.directory.teamsServicePlanIds)';
  return `has its Teams service plan ${plans.map((p) => p.capabilityStatus ?? 'without a status').join(', ')}`;
}

const digits = (s: string): string => s.replace(/\D/g, '');

/** The SIP-side keys a person offers for matching, normalized. */
export function sipKeys(p: Person, field: SipMatchField, stripDomain: boolean, phoneDigits: boolean): string[] {
  let raw: string[];
  switch (field) {
    case 'extension':
      raw = p.extension !== undefined ? [p.extension] : [];
      break;
    case 'id':
      raw = [p.id];
      break;
    case 'displayName':
      raw = [p.displayName];
      break;
    case 'aorUser':
      raw = p.sipAors.map((a) => {
        const rest = a.slice(a.indexOf(':') + 1);
        const at = rest.lastIndexOf('@');
        return at < 0 ? '' : rest.slice(0, at);
      });
      break;
  }
  return raw.map((k) => normalizeKey(k, stripDomain, phoneDigits)).filter((k) => k !== '');
}

function normalizeKey(k: string, stripDomain: boolean, phoneDigits: boolean): string {
  if (phoneDigits) return digits(k);
  let s = k.trim().toLowerCase();
  if (stripDomain) {
    const at = s.indexOf('@');
    if (at >= 0) s = s.slice(0, at);
  }
  return s;
}

function graphValues(u: GraphUser, field: GraphMatchField): string[] {
  if (field === 'businessPhones') return u.businessPhones ?? [];
  const v = u[field];
  return typeof v === 'string' && v !== '' ? [v] : [];
}

/**
 * Match persons to Graph users. Pure: no Graph calls, no directory writes.
 * `staticUsers` are the static table already resolved to user ids.
 */
export function matchPersons(
  persons: readonly Person[],
  users: ReadonlyMap<string, GraphUser>,
  config: DirectoryConfig,
  staticUsers: ReadonlyMap<string, { userId: string; upn?: string; mail?: string }>,
): { matched: DirectoryMatch[]; conflicts: string[]; unmatchedPersons: Person[]; unmatchedUsers: GraphUser[] } {
  const { sip, graph, stripDomain } = config.match;
  const phones = graph === 'businessPhones';
  const matched: DirectoryMatch[] = [];
  const conflicts: string[] = [];
  const taken = new Set<string>();

  for (const [personId, s] of staticUsers) {
    const userId = s.userId.toLowerCase();
    if (taken.has(userId)) {
      conflicts.push(`directory.static: ${s.userId} is named for two persons; "${personId}" not mapped`);
      continue;
    }
    taken.add(userId);
    const upn = s.upn ?? text(users.get(userId)?.userPrincipalName);
    const mail = s.mail ?? text(users.get(userId)?.mail);
    matched.push({ personId, userId, ...(upn !== undefined ? { upn } : {}), ...(mail !== undefined ? { mail } : {}), via: 'static' });
  }

  const candidates = persons.filter((p) => !staticUsers.has(p.id));
  const keyed = candidates.map((p) => ({ person: p, keys: sipKeys(p, sip, stripDomain, phones) }));
  // phone numbers match by their trailing digits, at the lengths the SIP keys have
  const lengths = phones ? [...new Set(keyed.flatMap((k) => k.keys.map((x) => x.length)))].filter((n) => n > 0) : [];
  const index = new Map<string, GraphUser | null>(); // null: more than one user has the key
  for (const u of users.values()) {
    const keys = new Set<string>();
    for (const v of graphValues(u, graph)) {
      if (phones) {
        const d = digits(v);
        for (const n of lengths) if (d.length >= n) keys.add(d.slice(d.length - n));
      } else keys.add(normalizeKey(v, stripDomain, false));
    }
    for (const k of keys) {
      if (k === '') continue;
      const prior = index.get(k);
      index.set(k, prior === undefined || prior?.id === u.id ? u : null);
    }
  }

  const unmatchedPersons: Person[] = [];
  for (const { person, keys } of keyed) {
    let found: GraphUser | undefined;
    let why: string | undefined;
    for (const k of keys) {
      const u = index.get(k);
      if (u === undefined) continue;
      if (u === null) {
        why = `"${k}" matches more than one Teams user (${graph}); add "${person.id}" to directory.static`;
        continue;
      }
      if (taken.has(u.id)) {
        why = `Teams user ${u.userPrincipalName ?? u.id} is already mapped to another person`;
        continue;
      }
      found = u;
      break;
    }
    if (found === undefined) {
      if (why !== undefined) conflicts.push(`${person.id}: ${why}`);
      unmatchedPersons.push(person);
      continue;
    }
    taken.add(found.id);
    const upn = text(found.userPrincipalName);
    const mail = text(found.mail);
    matched.push({ personId: person.id, userId: found.id, ...(upn !== undefined ? { upn } : {}), ...(mail !== undefined ? { mail } : {}), via: 'match' });
  }
  const unmatchedUsers = [...users.values()].filter((u) => !taken.has(u.id));
  return { matched, conflicts, unmatchedPersons, unmatchedUsers };
}

export interface DirectorySyncOptions {
  client: Client;
  directory: Directory;
  config: DirectoryConfig;
  logger: Logger;
}

export class DirectorySync {
  /** every user listed (licensed or not), by id */
  private readonly users = new Map<string, GraphUser>();
  private readonly planIds: ReadonlySet<string>;
  private deltaLink: string | undefined;
  private readonly staticByUpn = new Map<string, string>();
  private last: DirectorySyncResult | undefined;

  constructor(private readonly o: DirectorySyncOptions) {
    this.planIds = new Set(o.config.teamsServicePlanIds.map((id) => id.toLowerCase()));
  }

  private selectFields(withPlans: boolean): string[] {
    const f = new Set(['id', 'displayName', 'userPrincipalName', 'mail', 'mailNickname', this.o.config.match.graph]);
    if (withPlans) f.add('assignedPlans');
    return [...f];
  }

  private async pages(first: string, build: (path: string) => Promise<unknown>, onPage: (value: unknown[]) => void): Promise<string | undefined> {
    let next: string | undefined = first;
    let deltaLink: string | undefined;
    let guard = 0;
    while (next !== undefined) {
      if (++guard > 100_000) throw new Error('paging does not end');
      const page = await build(next);
      if (!isRecord(page)) throw new Error('the users answer is not an object');
      onPage(Array.isArray(page['value']) ? page['value'] : []);
      next = text(page['@odata.nextLink']);
      deltaLink = text(page['@odata.deltaLink']) ?? deltaLink;
    }
    return deltaLink;
  }

  /** List every user afresh, match, apply; delta tracking starts from before the listing. */
  async fullSync(): Promise<DirectorySyncResult> {
    const { client, config } = this.o;
    const listed = new Map<string, GraphUser>();
    const select = this.selectFields(config.teamsLicensedOnly).join(',');
    // Graph: user-delta ($deltatoken=latest: a link that tracks changes from now). Taken first, so a change made
    // while the listing pages is in the first delta (applied twice at worst: delta merges are idempotent).
    let deltaLink: string | undefined;
    try {
      const body: unknown = await client.api('/users/delta').select(select).query({ $deltatoken: 'latest' }).get();
      deltaLink = isRecord(body) ? text(body['@odata.deltaLink']) : undefined;
    } catch (error) {
      this.o.logger.info({ err: graphFailure(error) }, 'graph: users delta not available; the next sync lists all users');
    }
    await this.pages(
      '/users',
      (path) => {
        if (path !== '/users') return client.api(path).get() as Promise<unknown>;
        return client.api('/users').select(select).top(999).get() as Promise<unknown>;
      },
      (value) => {
        for (const v of value) {
          const u = toUser(v);
          if (u !== undefined) listed.set(u.id, u);
        }
      },
    );
    this.users.clear();
    for (const [k, u] of listed) this.users.set(k, u);
    this.deltaLink = deltaLink;
    return this.apply('full');
  }

  /** Apply the changes since the last sync (a full sync when there is no delta link yet). */
  async deltaSync(): Promise<DirectorySyncResult> {
    const link = this.deltaLink;
    if (link === undefined) return this.fullSync();
    const { client } = this.o;
    let changed = 0;
    const newLink = await this.pages(
      link,
      (path) => client.api(path).get() as Promise<unknown>,
      (value) => {
        for (const v of value) {
          if (!isRecord(v) || typeof v['id'] !== 'string') continue;
          const id = v['id'].toLowerCase();
          changed++;
          if (v['@removed'] !== undefined) {
            this.users.delete(id);
            continue;
          }
          // delta carries at least the changed properties: merge over what we had
          const merged = toUser({ ...(this.users.get(id) ?? {}), ...v, id });
          if (merged !== undefined) this.users.set(id, merged);
        }
      },
    );
    this.deltaLink = newLink ?? link;
    this.o.logger.debug({ changed }, 'graph: users delta applied');
    return this.apply('delta');
  }

  /** The users persons may be matched to: the Teams-licensed ones when so configured. */
  private usable(): { usable: Map<string, GraphUser>; unlicensed: Map<string, { user: GraphUser; problem: string }> } {
    const usable = new Map<string, GraphUser>();
    const unlicensed = new Map<string, { user: GraphUser; problem: string }>();
    for (const [id, u] of this.users) {
      const problem = this.o.config.teamsLicensedOnly ? teamsLicenceProblem(u, this.planIds) : undefined;
      if (problem === undefined) usable.set(id, u);
      else unlicensed.set(id, { user: u, problem });
    }
    return { usable, unlicensed };
  }

  private async resolveStatic(): Promise<{ map: Map<string, { userId: string; upn?: string; mail?: string }>; conflicts: string[] }> {
    const map = new Map<string, { userId: string; upn?: string; mail?: string }>();
    const conflicts: string[] = [];
    const byUpn = new Map<string, GraphUser>();
    for (const u of this.users.values()) if (u.userPrincipalName) byUpn.set(u.userPrincipalName.toLowerCase(), u);
    for (const [i, s] of this.o.config.static.entries()) {
      if (this.o.directory.get(s.person) === undefined) {
        conflicts.push(`directory.static[${i}]: no person "${s.person}" in users`);
        continue;
      }
      if (s.userId !== undefined) {
        map.set(s.person, { userId: s.userId.toLowerCase() });
        continue;
      }
      const upn = (s.upn ?? '').toLowerCase();
      const known = byUpn.get(upn)?.id ?? this.staticByUpn.get(upn);
      if (known !== undefined) {
        map.set(s.person, { userId: known, upn: s.upn ?? upn });
        continue;
      }
      try {
        const body: unknown = await this.o.client.api(`/users/${encodeURIComponent(s.upn ?? '')}`).select('id,userPrincipalName,mail').get();
        const u = toUser(body);
        if (u === undefined) throw new Error('no id in the answer');
        this.staticByUpn.set(upn, u.id);
        const mail = text(u.mail);
        map.set(s.person, { userId: u.id, upn: text(u.userPrincipalName) ?? s.upn ?? upn, ...(mail !== undefined ? { mail } : {}) });
      } catch (error) {
        const f = graphFailure(error);
        conflicts.push(`directory.static[${i}]: ${s.upn} not found in the tenant (${f.status || f.code}); check the UPN`);
      }
    }
    return { map, conflicts };
  }

  private async apply(mode: 'full' | 'delta'): Promise<DirectorySyncResult> {
    const { directory, logger } = this.o;
    const st = await this.resolveStatic();
    const { usable, unlicensed } = this.usable();
    const m = matchPersons(directory.all(), usable, this.o.config, st.map);
    const conflicts = [...st.conflicts, ...m.conflicts];
    const matched: DirectoryMatch[] = [];
    for (const match of m.matched) {
      const p = directory.get(match.personId);
      if (p === undefined) continue;
      if (p.teams?.userId?.toLowerCase() === match.userId && p.teams.upn === match.upn && p.teams.mail === match.mail) {
        matched.push(match);
        continue;
      }
      try {
        directory.setTeamsIdentity(match.personId, {
          userId: match.userId,
          ...(match.upn !== undefined ? { upn: match.upn } : {}),
          ...(match.mail !== undefined ? { mail: match.mail } : {}),
        });
        matched.push(match);
      } catch (error) {
        conflicts.push(`${match.personId}: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
    const kept: string[] = [];
    const unmatchedPersons: string[] = [];
    const left: Person[] = [];
    for (const p of m.unmatchedPersons) {
      if (p.teams?.userId !== undefined) kept.push(p.id);
      else {
        unmatchedPersons.push(p.id);
        left.push(p);
      }
    }
    // why: the person matches a Teams user without a usable licence, or nobody at all
    const byUnlicensed = matchPersons(left, new Map([...unlicensed].map(([id, x]) => [id, x.user])), this.o.config, new Map());
    const why = new Map<string, string>();
    for (const x of byUnlicensed.matched) {
      const u = unlicensed.get(x.userId);
      if (u !== undefined) why.set(x.personId, `Teams user ${text(u.user.userPrincipalName) ?? u.user.id} ${u.problem}; filtered out by graph.directory.teamsLicensedOnly`);
    }
    const { sip, graph } = this.o.config.match;
    const excluded = left.map((p) => ({
      personId: p.id,
      reason: why.get(p.id) ?? m.conflicts.find((c) => c.startsWith(`${p.id}: `))?.slice(p.id.length + 2) ?? `no Teams user's ${graph} matches the person's ${sip}; fix either side or add a directory.static entry`,
    }));
    const result: DirectorySyncResult = {
      matched,
      unmatchedPersons,
      kept,
      excluded,
      unmatchedUsers: m.unmatchedUsers.map((u) => ({
        id: u.id,
        ...(text(u.userPrincipalName) !== undefined ? { upn: text(u.userPrincipalName) as string } : {}),
        ...(text(u.displayName) !== undefined ? { displayName: text(u.displayName) as string } : {}),
      })),
      conflicts,
      usersListed: usable.size,
      mode,
    };
    logger.info(
      {
        mode,
        users: usable.size,
        matched: matched.length,
        unmatchedPersons: unmatchedPersons.length,
        unmatchedUsers: result.unmatchedUsers.length,
        conflicts: conflicts.length,
        samplePersons: unmatchedPersons.slice(0, 20),
        sampleUsers: result.unmatchedUsers.slice(0, 20).map((u) => u.upn ?? u.id),
      },
      'graph: directory sync',
    );
    for (const c of conflicts.slice(0, 50)) logger.warn({ conflict: c }, 'graph: directory sync conflict');
    this.last = result;
    return result;
  }

  lastResult(): DirectorySyncResult | undefined {
    return this.last;
  }
}
