/**
 * The canonical person state: one record per person made of sources, each
 * stamped with where it came from and when. Views are derived from it, never
 * stored (see view.ts). No wire format is known here.
 */

export type Basic = 'open' | 'closed';
export type LineState = 'idle' | 'ringing' | 'in-call' | 'on-hold' | 'unknown';
export type CallPhase = 'trying' | 'proceeding' | 'early' | 'confirmed' | 'terminated';

export interface Call {
  id: string;
  phase: CallPhase;
  direction?: 'initiator' | 'recipient';
  held?: boolean;
  remote?: { identity?: string; display?: string };
  callId?: string;
  localTag?: string;
  remoteTag?: string;
  /** Made by core from a busy activity, not a real SIP dialog. */
  synthetic?: boolean;
}

/** Line state learned from a PBX (dialog state, hints) or a phone's dialog PUBLISH. */
export interface TelephonyState {
  line: LineState;
  dnd: boolean;
  calls: Call[];
  /** Which trunk or publication it came from. */
  origin: string;
  at: number;
}

/** Rich presence published or notified over SIP (PIDF with RPID). */
export interface RichState {
  basic: Basic;
  /** RPID activity names (RFC 4480): on-the-phone, busy, away, meeting, vacation, ...; 'dnd' for do-not-disturb. */
  activities: string[];
  note?: string;
  origin: string;
  at: number;
}

/** Teams presence as read from Microsoft Graph (availability/activity kept as Graph spells them). */
export interface TeamsState {
  availability: string;
  activity: string;
  statusMessage?: string;
  outOfOffice?: boolean;
  /** The automatic reply text while out of office (Graph outOfOfficeSettings.message), plain text. */
  outOfOfficeMessage?: string;
  /** Graph's opaque, sortable sequence number. */
  sequenceNumber?: string;
  at: number;
}

/** Free/busy statuses of a calendar block (Graph's freeBusyStatus, without free and unknown). */
export type CalendarBusy = 'busy' | 'tentative' | 'oof' | 'workingElsewhere';

/** What the person's calendar says about now: the block they are in and when it ends. */
export interface CalendarState {
  status: CalendarBusy;
  /** The block's start and end, ms since the epoch (back-to-back blocks joined). */
  from: number;
  until: number;
  at: number;
}

/** What the gateway wants its own Teams app session to say for a person (Graph's valid session pairs only). */
export type TeamsTarget =
  | {
      kind: 'set';
      availability: 'Available' | 'Busy' | 'Away' | 'DoNotDisturb';
      activity: 'Available' | 'InACall' | 'InAConferenceCall' | 'Away' | 'Presenting';
      /** The target comes from DND: the writer may use setUserPreferredPresence instead of a session. */
      preferredDnd?: boolean;
    }
  | {
      kind: 'clear';
      /**
       * The person changed their own Teams presence away from the gateway's DoNotDisturb
       * (which cleared a phone-set DND): the preferred presence is theirs now and stays.
       */
      personChose?: boolean;
    };

export interface PersonState {
  telephony?: TelephonyState;
  sip?: RichState;
  teams?: TeamsState;
  /** Set only with the opt-in calendar reader. */
  calendar?: CalendarState;
}

export type ViewSource = 'none' | 'sip' | 'telephony' | 'teams';

/** What SIP watchers are shown: derived from PersonState. */
export interface PresenceView {
  personId: string;
  basic: Basic;
  activities: string[];
  dnd: boolean;
  ringing: boolean;
  note?: string;
  /** Non-terminated calls for dialog-info, with a synthetic confirmed one while busy on the phone without a dialog. */
  calls: Call[];
  /**
   * Set when no live telephony source speaks for the person (their trunk is
   * down, their device unreachable): lamps must not claim idle. Absent otherwise.
   */
  phoneUnknown?: true;
  /** Texts for attendant consoles: the Teams status message, the out-of-office message (with the person's language). */
  notes?: Array<{ text: string; lang?: string }>;
  /** When the shown activity ends (ms since the epoch): the end of the meeting Teams reports, from the calendar (RPID `until`). */
  activitiesUntil?: number;
  /** +1 on every change of the view. */
  revision: number;
  changedAt: number;
  source: ViewSource;
}

/** Activities that mean "on a call" for lamps and for Teams. */
export const CALL_ACTIVITIES: ReadonlySet<string> = new Set(['on-the-phone']);
