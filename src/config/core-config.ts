/**
 * The config as core takes it: configured users as persons, and the mapping
 * section as the PresenceHub's options (the Teams-to-SIP table, source
 * priority per group, the echo window, busy-on-busy's own echo).
 */
import { normalizeAor, type Person } from '../core/directory.js';
import { DEFAULT_TEAMS_TO_SIP, PRESENTING_AS_DND, type SipMeaning, type TeamsToSipTable } from '../core/mapping.js';
import type { PresenceHubOptions } from '../core/presence-hub.js';
import { parseUri } from '../sip/uri.js';
import type { GatewayConfig, UserConfig } from './schema.js';

/** A configured user as a person: AoRs normalized, sip:<id>@<domain> when none are given. */
export function personFromConfig(user: UserConfig, domain: string): Person {
  const aors = (user.sip ?? [`sip:${user.id}@${domain}`]).map((text) => {
    const uri = parseUri(text);
    if (uri === null) throw new Error(`users[${user.id}].sip: "${text}" is not a SIP URI`);
    return normalizeAor(uri.scheme, uri.user, uri.host);
  });
  const person: Person = { id: user.id, displayName: user.displayName, sipAors: aors };
  if (user.extension !== undefined) person.extension = user.extension;
  if (user.language !== undefined) person.language = user.language;
  return person;
}

/** The Teams-to-SIP table of this deployment: the defaults, the Presenting choice, then per-name overrides. */
export function teamsToSipTable(mapping: GatewayConfig['mapping']): TeamsToSipTable {
  const table: Record<string, SipMeaning> = { ...(mapping.presenting === 'dnd' ? PRESENTING_AS_DND : DEFAULT_TEAMS_TO_SIP) };
  for (const [name, meaning] of Object.entries(mapping.teamsToSip)) {
    const m: SipMeaning = { activities: meaning.activities };
    if (meaning.dnd !== undefined) m.dnd = meaning.dnd;
    if (meaning.call !== undefined) m.call = meaning.call;
    if (meaning.note !== undefined) m.note = meaning.note;
    table[name.toLowerCase()] = m;
  }
  return table;
}

/** The PresenceHub's options from the mapping (and the Graph calendar and writer choices that change composition). */
export function presenceStoreOptions(config: GatewayConfig): PresenceHubOptions {
  const priority = new Map<string, readonly string[]>();
  for (const g of config.mapping.groups) for (const m of g.members) priority.set(m, g.prefer);
  return {
    prefer: config.mapping.prefer,
    sourcePriority: (personId) => priority.get(personId),
    teamsToSip: teamsToSipTable(config.mapping),
    echoWindowMs: config.mapping.echoWindowSec * 1000,
    ...(config.graph?.calendar.enabled === true ? { timeZone: config.graph.calendar.timeZone } : {}),
    // busy-on-busy: the DoNotDisturb the Graph writer holds during a PBX call is its own echo
    ...(config.graph?.writer.duringCall === 'dnd' ? { callEchoes: [{ availability: 'DoNotDisturb', activity: 'DoNotDisturb' }] } : {}),
  };
}
