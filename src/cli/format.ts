/**
 * Plain-text output of the command-line tool: aligned tables and the lines
 * describing users, a user's history and trunks, from the admin API's JSON.
 * The JSON shapes are the admin API's (src/http/rows.ts, admin-source.ts).
 */
import type { GraphSubscriptionInfo, TrunkInfo } from '../http/admin-source.js';
import type { UserDetail, UserRow } from '../http/rows.js';

/** Columns padded to their widest cell; the last column is not padded. */
export function table(header: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}

function when(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms)) return '-';
  return new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

export function teamsPresence(row: UserRow): string {
  const t = row.teamsPresence;
  if (t === null) return '-';
  return t.availability === t.activity ? t.availability : `${t.availability}/${t.activity}`;
}

export function telephony(row: UserRow): string {
  const t = row.telephony;
  if (t === null) return '-';
  const parts = [t.line];
  if (t.dnd) parts.push('dnd');
  if (t.calls > 1) parts.push(`${t.calls} calls`);
  return parts.join(', ');
}

export function usersTable(users: readonly UserRow[]): string {
  if (users.length === 0) return 'no users\n';
  return table(
    ['ID', 'NAME', 'EXT', 'SIP', 'TEAMS UPN', 'TEAMS ID', 'TEAMS', 'TELEPHONY', 'WATCHERS SEE'],
    users.map((u) => [
      u.id,
      u.name,
      u.extension ?? '-',
      u.aors.join(' ') || '-',
      u.teams?.upn ?? '-',
      u.teams?.userId ?? '-',
      teamsPresence(u),
      telephony(u),
      u.watchersSee.state,
    ]),
  );
}

export function userDetailText(u: UserDetail): string {
  const seen = u.watchersSee;
  const watchers = Object.entries(u.watchers)
    .map(([event, n]) => `${event} ${n}`)
    .join(', ');
  const lines = [
    `${u.name} (${u.id})`,
    `  extension:      ${u.extension ?? '-'}`,
    `  SIP:            ${u.aors.join(', ') || '-'}`,
    `  Teams user:     ${u.teams === null ? 'not matched' : `${u.teams.upn ?? '-'} (${u.teams.userId ?? 'no id yet'})`}`,
    `  Teams presence: ${teamsPresence(u)}${u.teamsPresence?.statusMessage ? ` "${u.teamsPresence.statusMessage}"` : ''}${u.teamsPresence !== null ? ` since ${when(u.teamsPresence.at)}` : ''}`,
    `  telephony:      ${telephony(u)}${u.telephony !== null ? ` from ${u.telephony.origin} since ${when(u.telephony.at)}` : ''}`,
    `  SIP presence:   ${u.sip === null ? '-' : `${u.sip.basic}${u.sip.activities.length > 0 ? ` ${u.sip.activities.join(',')}` : ''} from ${u.sip.origin}`}`,
    `  watchers see:   ${seen.state} (${seen.basic}${seen.activities.length > 0 ? `, ${seen.activities.join(',')}` : ''}${seen.dnd ? ', dnd' : ''}${seen.note !== null ? `, "${seen.note}"` : ''}; source ${seen.source})`,
    `  calls:          ${seen.calls.length === 0 ? 'none' : seen.calls.map((c) => `${c.phase}${c.direction !== null ? ` ${c.direction}` : ''}${c.synthetic ? ' (from Teams)' : ''}`).join(', ')}`,
    `  watching:       ${watchers || 'nobody'}`,
    `  last change:    ${when(u.lastChange.at)} (${u.lastChange.source})`,
    '',
  ];
  let out = lines.join('\n');
  if (u.history.length === 0) return out + 'history: no changes recorded since the gateway started\n';
  out += `history (oldest first, ${u.history.length}):\n`;
  out += table(
    ['TIME', 'STATE', 'SOURCE', 'ACTIVITIES', 'DND', 'CALLS', 'NOTE'],
    u.history.map((h) => [when(h.at), h.state, h.source, h.activities.join(',') || '-', h.dnd ? 'yes' : 'no', String(h.calls), h.note ?? '']),
  );
  return out;
}

function yesNo(v: boolean | undefined): string {
  return v === undefined ? '?' : v ? 'yes' : 'no';
}

export function trunksTable(trunks: readonly TrunkInfo[]): string {
  if (trunks.length === 0) return 'no trunks configured\n';
  return table(
    ['NAME', 'PROFILE', 'DIRECTIONS', 'UP', 'RTT', 'AUTH', 'SUBSCRIPTIONS', 'PUBLICATIONS', 'LAST ERROR'],
    trunks.map((t) => [
      t.name,
      t.profile,
      t.directions.join('+'),
      yesNo(t.reachable),
      t.rttMs !== undefined ? `${Math.round(t.rttMs)} ms` : '-',
      yesNo(t.authenticated),
      `${t.subscriptions.up} up / ${t.subscriptions.down} down`,
      `${t.publications.up} up / ${t.publications.down} down`,
      t.lastError !== undefined ? `${when(t.lastError.at)} ${t.lastError.message}` : '',
    ]),
  );
}

export function graphSubscriptionsTable(subs: readonly GraphSubscriptionInfo[]): string {
  if (subs.length === 0) return 'no Graph subscriptions\n';
  return table(
    ['ACCOUNT', 'STATE', 'USERS', 'EXPIRES', 'FAILURES', 'LAST ERROR'],
    subs.map((s) => [s.account, s.state, String(s.users), s.expiresAt ?? '-', String(s.failures), s.lastError ?? '']),
  );
}
