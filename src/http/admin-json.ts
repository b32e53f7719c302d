/**
 * The JSON shapes of the admin API: one row per user (both presences, what
 * watchers see, the last change) and the connector list of the diagnostics
 * page. Types only and no imports, so the diagnostics page's browser script
 * (diagnostics-page/diagnostics.ts) is checked against the same shapes.
 */

/** One word for what a watcher's lamp shows, for filtering. */
export type SeenState = 'ringing' | 'on-the-phone' | 'dnd' | 'busy' | 'meeting' | 'away' | 'offline' | 'available';

export interface UserRow {
  id: string;
  name: string;
  extension: string | null;
  aors: string[];
  teams: { userId: string | null; upn: string | null } | null;
  /** why there is no Teams identity (present only then, when known) */
  teamsExcluded?: string;
  teamsPresence: { availability: string; activity: string; statusMessage: string | null; at: number } | null;
  telephony: { line: string; dnd: boolean; calls: number; origin: string; at: number } | null;
  sip: { basic: string; activities: string[]; note: string | null; origin: string; at: number } | null;
  watchersSee: {
    state: SeenState;
    basic: string;
    activities: string[];
    dnd: boolean;
    ringing: boolean;
    note: string | null;
    calls: Array<{ id: string; phase: string; direction: string | null; synthetic: boolean }>;
    source: string;
    /** Teams status and out-of-office texts consoles get as PIDF notes. */
    consoleNotes: string[];
    /** When the shown activity ends (RPID until; a meeting's end from the calendar), ISO time; null when not known. */
    until: string | null;
  };
  revision: number;
  lastChange: { at: number; source: string };
  /** Source priority deciding the view, first wins (mapping.groups, else mapping.prefer). */
  sourcePriority: string[];
  /** Forwarding the person's desk phones set (as-feature-event): kept by the gateway, sent to all their phones, not synced to Teams. */
  phoneForwarding: Array<{ type: string; on: boolean; to: string | null; ringCount: number | null; at: number }>;
}


export interface HistoryRow {
  at: number;
  source: string;
  revision: number;
  state: SeenState;
  activities: string[];
  dnd: boolean;
  calls: number;
  note: string | null;
}


export interface UserDetail extends UserRow {
  watchers: Record<string, number>;
  history: HistoryRow[];
}


export type ConnectorKind = 'trunk' | 'graph-auth' | 'graph-subscription' | 'graph-poll' | 'graph-calendar' | 'webhook' | 'security';

export interface Connector {
  kind: ConnectorKind;
  name: string;
  /** true: up, false: down, null: not known yet */
  ok: boolean | null;
  detail: string;
  /** ms since epoch, when the connector has a relevant time (expiry, last delivery) */
  at?: number;
  /** badge text instead of Up / Down / Unknown */
  badge?: string;
  /** what the page offers on the card: a device-code sign-in */
  action?: 'sign-in';
  /** a device-code sign-in under way: what to enter where */
  prompt?: { userCode: string; verificationUri: string; expiresAt: number };
}
