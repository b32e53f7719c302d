/**
 * The admin API's rows, built from an AdminSource: one row per user (both
 * presences, what watchers see, the last change) and the connector list of
 * the diagnostics page (their JSON shapes are in admin-json.ts). No wire formats here.
 */
import type { Person } from '../core/directory.js';
import type { HistoryEntry } from '../core/history.js';
import type { PresenceView } from '../core/person-state.js';
import type { AdminSource, GraphAccountInfo, GraphInfo, SecurityInfo, TrunkInfo } from './admin-source.js';
import type { Connector, SeenState, UserDetail, UserRow } from './admin-json.js';

// the shapes, for the importers of the rows
export type { Connector, ConnectorKind, HistoryRow, SeenState, UserDetail, UserRow } from './admin-json.js';

export const SEEN_STATES: readonly SeenState[] = ['available', 'ringing', 'on-the-phone', 'dnd', 'busy', 'meeting', 'away', 'offline'];

export function seenState(view: PresenceView): SeenState {
  if (view.ringing) return 'ringing';
  const a = view.activities;
  if (a.includes('on-the-phone') || view.calls.some((c) => c.phase === 'confirmed')) return 'on-the-phone';
  if (view.dnd) return 'dnd';
  if (a.includes('busy')) return 'busy';
  if (a.includes('meeting')) return 'meeting';
  if (a.includes('away') || a.includes('vacation') || a.includes('steppingout')) return 'away';
  if (view.basic === 'closed') return 'offline';
  return 'available';
}

export function userRow(source: AdminSource, person: Person, last?: HistoryEntry): UserRow {
  const view = source.view(person.id);
  const state = source.state(person.id);
  const t = state.teams;
  const tel = state.telephony;
  const sip = state.sip;
  const lastEntry = last ?? lastOf(source.history(person.id));
  const excluded = person.teams === undefined ? source.teamsExcluded?.(person.id) : undefined;
  return {
    ...(excluded !== undefined ? { teamsExcluded: excluded } : {}),
    id: person.id,
    name: person.displayName,
    extension: person.extension ?? null,
    aors: [...person.sipAors],
    teams: person.teams !== undefined ? { userId: person.teams.userId ?? null, upn: person.teams.upn ?? null } : null,
    teamsPresence:
      t !== undefined ? { availability: t.availability, activity: t.activity, statusMessage: t.statusMessage ?? null, at: t.at } : null,
    telephony:
      tel !== undefined
        ? { line: tel.line, dnd: tel.dnd, calls: tel.calls.filter((c) => c.phase !== 'terminated').length, origin: tel.origin, at: tel.at }
        : null,
    sip: sip !== undefined ? { basic: sip.basic, activities: [...sip.activities], note: sip.note ?? null, origin: sip.origin, at: sip.at } : null,
    watchersSee: {
      state: seenState(view),
      basic: view.basic,
      activities: [...view.activities],
      dnd: view.dnd,
      ringing: view.ringing,
      note: view.note ?? null,
      calls: view.calls.map((c) => ({ id: c.id, phase: c.phase, direction: c.direction ?? null, synthetic: c.synthetic === true })),
      source: view.source,
      consoleNotes: view.notes?.map((n) => n.text) ?? [],
      until: view.activitiesUntil !== undefined ? new Date(view.activitiesUntil).toISOString() : null,
    },
    revision: view.revision,
    sourcePriority: [...(source.sourcePriority?.(person.id) ?? [])],
    phoneForwarding: (source.forwarding?.(person.id) ?? []).map((f) => ({ type: f.type, on: f.on, to: f.to ?? null, ringCount: f.ringCount ?? null, at: f.at })),
    lastChange:
      lastEntry !== undefined && lastEntry.view.revision === view.revision
        ? { at: lastEntry.at, source: lastEntry.source }
        : { at: view.changedAt, source: view.source },
  };
}

function lastOf(entries: readonly HistoryEntry[]): HistoryEntry | undefined {
  return entries.length > 0 ? entries[entries.length - 1] : undefined;
}

export function userDetail(source: AdminSource, person: Person): UserDetail {
  const history = source.history(person.id);
  return {
    ...userRow(source, person, lastOf(history)),
    watchers: { ...source.watchers(person.id) },
    history: history.map((h) => ({
      at: h.at,
      source: h.source,
      revision: h.view.revision,
      state: seenState(h.view),
      activities: [...h.view.activities],
      dnd: h.view.dnd,
      calls: h.view.calls.length,
      note: h.view.note ?? null,
    })),
  };
}

/** The defences at a glance: failed logins, lockouts, connection limits (from the security log's tally). */
function securityConnector(s: SecurityInfo): Connector {
  return {
    kind: 'security',
    name: 'guessing and connection limits',
    ok: s.activeLockouts === 0,
    badge: s.activeLockouts === 0 ? 'No lockout' : `${s.activeLockouts} locked out`,
    detail:
      `${s.authFailures} failed logins, ${s.lockouts} lockouts, ${s.refusals} refused; ` +
      `connections: ${s.connectionsRefused} refused, ${s.connectionsClosed} closed by limits`,
  };
}

export interface WebhookInfo {
  path: string;
  lastDeliveryAt?: number;
  lastStatus?: number;
  deliveries: number;
}

function trunkConnector(t: TrunkInfo): Connector {
  const ok = t.reachable === false || t.authenticated === false ? false : t.reachable === true ? true : null;
  const parts: string[] = [`${t.profile}, ${t.directions.join('+')}`];
  if (t.reachable === false) parts.push('unreachable');
  if (t.authenticated === false) parts.push('authentication failed');
  if (t.rttMs !== undefined) parts.push(`rtt ${Math.round(t.rttMs)} ms`);
  parts.push(`subscriptions ${t.subscriptions.up} up / ${t.subscriptions.down} down`);
  if (t.publications.up + t.publications.down > 0) parts.push(`publications ${t.publications.up} up / ${t.publications.down} down`);
  if (t.lastError !== undefined) parts.push(`last error: ${t.lastError.message}`);
  const c: Connector = { kind: 'trunk', name: t.name, ok, detail: parts.join('; ') };
  if (t.lastError !== undefined) c.at = t.lastError.at;
  return c;
}

/** A service account's card: red unless it can be used, the reason, and a sign-in action for device-code accounts. */
function accountConnector(a: GraphAccountInfo, tok: GraphInfo['tokens'][number] | undefined, now: number): Connector {
  const tokenFailing = tok !== undefined && !tok.ok && tok.lastError !== undefined;
  const ok = a.state === 'signed-in' ? !tokenFailing : a.state === 'signed-out' && a.method === 'password' ? null : a.usable && !tokenFailing ? true : false;
  let detail = a.reason ?? (a.state === 'signed-in' ? 'signed in' : a.state);
  if (a.state === 'signed-in' && tokenFailing) detail = tok.lastError ?? detail;
  const c: Connector = { kind: 'graph-auth', name: a.account, ok, detail };
  if (a.prompt !== undefined && a.prompt.expiresAt > now) {
    c.prompt = { userCode: a.prompt.userCode, verificationUri: a.prompt.verificationUri, expiresAt: a.prompt.expiresAt };
    c.detail = `sign-in under way: open ${a.prompt.verificationUri} and enter ${a.prompt.userCode}`;
  }
  if (a.method === 'deviceCode' && (a.state !== 'signed-in' || !a.usable)) c.action = 'sign-in';
  const at = tok?.lastAcquiredAt ?? a.signedInAt;
  if (at !== undefined) c.at = at;
  return c;
}

function graphConnectors(g: GraphInfo, now: number): Connector[] {
  const out: Connector[] = [];
  const accounts = new Map((g.accounts ?? []).map((a) => [a.account.toLowerCase(), a]));
  for (const tok of g.tokens) {
    const account = accounts.get(tok.name.toLowerCase());
    if (account !== undefined) {
      out.push(accountConnector(account, tok, now));
      continue;
    }
    const c: Connector = {
      kind: 'graph-auth',
      name: tok.name,
      ok: tok.ok ? true : tok.lastError !== undefined ? false : null,
      detail: tok.ok ? 'token acquired' : (tok.lastError ?? 'no token yet'),
    };
    if (tok.lastAcquiredAt !== undefined) c.at = tok.lastAcquiredAt;
    out.push(c);
  }
  for (const s of g.reader.subscriptions) {
    if (s.state === 'unused') continue;
    const expires = s.expiresAt !== undefined ? Date.parse(s.expiresAt) : NaN;
    const live = s.state === 'active' && (Number.isNaN(expires) || expires > now);
    const ok = live ? true : s.state === 'pending' ? null : false;
    const parts = [`${s.state}, ${s.users} users`];
    if (!Number.isNaN(expires)) parts.push(`expires ${new Date(expires).toISOString()}`);
    if (s.lastError !== undefined) parts.push(`last error: ${s.lastError}`);
    const c: Connector = { kind: 'graph-subscription', name: s.account, ok, detail: parts.join('; ') };
    if (!Number.isNaN(expires)) c.at = expires;
    out.push(c);
  }
  if (g.reader.lastPollAt !== undefined || g.reader.lastPollError !== undefined) {
    const c: Connector = {
      kind: 'graph-poll',
      name: 'polling',
      ok: g.reader.lastPollError === undefined,
      detail: g.reader.lastPollError ?? `${g.reader.users} users read`,
    };
    if (g.reader.lastPollAt !== undefined) c.at = Date.parse(g.reader.lastPollAt);
    out.push(c);
  }
  if (g.calendar !== undefined) out.push(calendarConnector(g.calendar));
  return out;
}

/** The calendar reader: red while getSchedule is refused (no calendar permission) or failing. */
function calendarConnector(cal: NonNullable<GraphInfo['calendar']>): Connector {
  const ok = cal.state === 'ok' ? true : cal.state === 'denied' || cal.state === 'failing' ? false : null;
  const detail =
    cal.state === 'denied'
      ? `getSchedule refused: grant the application permission Calendars.ReadBasic.All or Calendars.Read (${cal.lastError ?? '403'})`
      : cal.lastError !== undefined
        ? `${cal.state}: ${cal.lastError}`
        : `${cal.people} calendars read, ${cal.busyNow} in a meeting now`;
  const c: Connector = { kind: 'graph-calendar', name: 'calendar', ok, detail };
  if (cal.state === 'denied') c.badge = 'No permission';
  if (cal.lastReadAt !== undefined) c.at = Date.parse(cal.lastReadAt);
  return c;
}

/** Every connector with its colour; the webhook counts as reachable once Graph has delivered to it. */
export function connectors(source: AdminSource, webhook: WebhookInfo | undefined, now: number = Date.now()): Connector[] {
  const out = source.trunks().map(trunkConnector);
  const g = source.graph();
  if (g !== undefined) out.push(...graphConnectors(g, now));
  if (webhook !== undefined) {
    const c: Connector = {
      kind: 'webhook',
      name: webhook.path,
      ok: webhook.lastStatus === undefined ? null : webhook.lastStatus < 300,
      detail:
        webhook.lastDeliveryAt === undefined
          ? 'no delivery from Graph yet'
          : `${webhook.deliveries} deliveries; last answered ${webhook.lastStatus ?? '?'}`,
    };
    if (webhook.lastDeliveryAt !== undefined) c.at = webhook.lastDeliveryAt;
    out.push(c);
  }
  const security = source.security?.();
  if (security !== undefined) out.push(securityConnector(security));
  return out;
}
