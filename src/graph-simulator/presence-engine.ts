import type { ScheduledTask, SimClock } from './clock.js';
import { isoGraph } from './ids.js';
import type { PresenceResource, StatusMessageResource, WorkLocationResource } from './model.js';
import { availabilityRank, FADE_AWAY_AFTER, FADE_IDLE_AFTER } from './presence-rules.js';

export type SessionKind = 'client' | 'app';

interface Session {
  id: string;
  kind: SessionKind;
  availability: string;
  activity: string;
  /** last set or refresh: the fade clock */
  refreshedAt: number;
  /** Infinity for a Teams client session */
  expiresAt: number;
}

interface Preferred {
  availability: string;
  activity: string;
  expiresAt: number;
}

interface StatusMessage {
  content: string;
  contentType: string;
  expiresAt: number;
  publishedAt: number;
}

interface UserPresence {
  sessions: Map<string, Session>;
  preferred: Preferred | undefined;
  statusMessage: StatusMessage | undefined;
  outOfOffice: boolean;
  outOfOfficeMessage: string | null;
  availability: string;
  activity: string;
  /** what the last emitted state was, to detect changes */
  key: string;
  sequence: string;
  workLocation: WorkLocationResource;
  timer: ScheduledTask | undefined;
}

/** A session as the control API lists it. */
export interface SessionInfo {
  sessionId: string;
  kind: SessionKind;
  /** as set */
  availability: string;
  activity: string;
  /** after fading, as it takes part in aggregation */
  effectiveAvailability: string;
  effectiveActivity: string;
  refreshedAt: string;
  expiresAt: string | null;
}

export type PresenceListener = (userId: string, presence: PresenceResource) => void;

/**
 * Presence sessions and their aggregation, per user. Every change of the
 * aggregated state (availability, activity, status message, out of office)
 * takes a new sequence number and is reported to the listener once.
 */
export class PresenceEngine {
  private readonly users = new Map<string, UserPresence>();
  private lastSequence: number;
  private readonly listeners: PresenceListener[] = [];

  constructor(private readonly clock: SimClock) {
    // start from the clock in microseconds so numbers keep growing across restarts
    this.lastSequence = clock.now() * 1000;
  }

  onChange(listener: PresenceListener): void {
    this.listeners.push(listener);
  }

  private nextSequence(): string {
    this.lastSequence = Math.max(this.lastSequence + 1, this.clock.now() * 1000);
    // fixed-width hex: lexical order is numeric order
    return this.lastSequence.toString(16).toUpperCase().padStart(16, '0');
  }

  private state(userId: string): UserPresence {
    let s = this.users.get(userId);
    if (!s) {
      s = {
        sessions: new Map(),
        preferred: undefined,
        statusMessage: undefined,
        outOfOffice: false,
        outOfOfficeMessage: null,
        availability: 'Offline',
        activity: 'Offline',
        key: 'Offline|Offline||0',
        sequence: this.nextSequence(),
        workLocation: { workLocationType: 'unknown', source: 'none', placeId: null },
        timer: undefined,
      };
      this.users.set(userId, s);
    }
    return s;
  }

  /** Set or refresh a session; durationMs null means it never expires (a Teams client). */
  setSession(userId: string, sessionId: string, kind: SessionKind, availability: string, activity: string, durationMs: number | null): void {
    const s = this.state(userId);
    const now = this.clock.now();
    s.sessions.set(sessionId, {
      id: sessionId,
      kind,
      availability,
      activity,
      refreshedAt: now,
      expiresAt: durationMs === null ? Infinity : now + durationMs,
    });
    this.update(userId, s);
  }

  hasSession(userId: string, sessionId: string): boolean {
    const s = this.users.get(userId);
    const session = s?.sessions.get(sessionId);
    return session !== undefined && session.expiresAt > this.clock.now();
  }

  /** Remove a session; false when it did not exist (or had expired). */
  clearSession(userId: string, sessionId: string): boolean {
    const s = this.users.get(userId);
    const session = s?.sessions.get(sessionId);
    if (!s || !session) return false;
    s.sessions.delete(sessionId);
    const alive = session.expiresAt > this.clock.now();
    this.update(userId, s);
    return alive;
  }

  setPreferred(userId: string, availability: string, activity: string, durationMs: number): void {
    const s = this.state(userId);
    s.preferred = { availability, activity, expiresAt: this.clock.now() + durationMs };
    this.update(userId, s);
  }

  clearPreferred(userId: string): void {
    const s = this.state(userId);
    s.preferred = undefined;
    this.update(userId, s);
  }

  /** content null or empty clears the message. */
  setStatusMessage(userId: string, content: string | null, contentType: string, expiresAt: number | null): void {
    const s = this.state(userId);
    s.statusMessage =
      content === null || content === ''
        ? undefined
        : { content, contentType, expiresAt: expiresAt ?? Infinity, publishedAt: this.clock.now() };
    this.update(userId, s);
  }

  setOutOfOffice(userId: string, on: boolean, message: string | null = null): void {
    const s = this.state(userId);
    s.outOfOffice = on;
    s.outOfOfficeMessage = on ? message : null;
    this.update(userId, s);
  }

  /** Where the person works today (Graph userWorkLocation); not part of availability, so no new sequence number. */
  setWorkLocation(userId: string, workLocationType: WorkLocationResource['workLocationType'], placeId: string | null = null): void {
    const s = this.state(userId);
    s.workLocation = { workLocationType, source: 'manual', placeId };
  }

  /** Forget a user (removed from the directory). */
  removeUser(userId: string): void {
    const s = this.users.get(userId);
    s?.timer?.cancel();
    this.users.delete(userId);
  }

  get(userId: string): PresenceResource {
    const s = this.state(userId);
    // an expiry that has not been processed yet (timer pending on a manual clock) shows anyway
    this.refresh(userId, s);
    const sm = s.statusMessage;
    let statusMessage: StatusMessageResource | null = null;
    if (sm) {
      statusMessage = {
        message: { content: sm.content, contentType: sm.contentType },
        expiryDateTime: Number.isFinite(sm.expiresAt) ? { dateTime: isoGraph(sm.expiresAt).replace(/Z$/, ''), timeZone: 'UTC' } : null,
        publishedDateTime: isoGraph(sm.publishedAt),
      };
    }
    return {
      id: userId,
      availability: s.availability,
      activity: s.activity,
      statusMessage,
      outOfOfficeSettings: { message: s.outOfOfficeMessage, isOutOfOffice: s.outOfOffice },
      sequenceNumber: s.sequence,
      workLocation: { ...s.workLocation },
    };
  }

  sessions(userId: string): SessionInfo[] {
    const s = this.users.get(userId);
    if (!s) return [];
    const now = this.clock.now();
    const out: SessionInfo[] = [];
    for (const session of s.sessions.values()) {
      const eff = effective(session, now);
      if (!eff) continue;
      out.push({
        sessionId: session.id,
        kind: session.kind,
        availability: session.availability,
        activity: session.activity,
        effectiveAvailability: eff[0],
        effectiveActivity: eff[1],
        refreshedAt: isoGraph(session.refreshedAt),
        expiresAt: Number.isFinite(session.expiresAt) ? isoGraph(session.expiresAt) : null,
      });
    }
    return out;
  }

  /** Recompute after a mutation; emit when the aggregate changed; schedule the next fade/expiry. */
  private update(userId: string, s: UserPresence): void {
    this.refresh(userId, s);
    this.reschedule(userId, s);
  }

  private refresh(userId: string, s: UserPresence): void {
    const now = this.clock.now();
    // drop what has expired
    for (const [id, session] of s.sessions) if (session.expiresAt <= now) s.sessions.delete(id);
    if (s.preferred && s.preferred.expiresAt <= now) s.preferred = undefined;
    if (s.statusMessage && s.statusMessage.expiresAt <= now) s.statusMessage = undefined;

    let availability = 'Offline';
    let activity = 'Offline';
    let best: Session | undefined;
    let bestRank = -1;
    let bestEff: readonly [string, string] | undefined;
    for (const session of s.sessions.values()) {
      const eff = effective(session, now);
      if (!eff) continue;
      const rank = availabilityRank(eff[0]);
      if (rank > bestRank || (rank === bestRank && best !== undefined && session.refreshedAt > best.refreshedAt)) {
        best = session;
        bestRank = rank;
        bestEff = eff;
      }
    }
    if (bestEff) {
      // the user's own choice wins over every session, but only shows while a session exists
      if (s.preferred) {
        availability = s.preferred.availability;
        activity = s.preferred.activity;
      } else {
        availability = bestEff[0];
        activity = bestEff[1];
      }
    }
    if (s.outOfOffice && (activity === 'Available' || activity === 'Away' || activity === 'Offline' || activity === 'OffWork' || activity === 'Inactive')) {
      activity = 'OutOfOffice';
    }
    const key = `${availability}|${activity}|${s.statusMessage ? `${s.statusMessage.content}\u0000${s.statusMessage.publishedAt}` : ''}|${s.outOfOffice ? 1 : 0}`;
    if (key === s.key) return;
    s.availability = availability;
    s.activity = activity;
    s.key = key;
    s.sequence = this.nextSequence();
    if (this.listeners.length > 0) {
      const presence = this.get(userId);
      for (const listener of this.listeners) {
        try {
          listener(userId, presence);
        } catch {
          // a listener's failure must not undo or block the presence change
        }
      }
    }
  }

  private reschedule(userId: string, s: UserPresence): void {
    const now = this.clock.now();
    let next = Infinity;
    for (const session of s.sessions.values()) {
      if (session.expiresAt < next) next = session.expiresAt;
      if (session.kind === 'app' && session.availability === 'Available') {
        const idleAt = session.refreshedAt + FADE_IDLE_AFTER;
        const awayAt = session.refreshedAt + FADE_AWAY_AFTER;
        if (idleAt > now && idleAt < next) next = idleAt;
        else if (awayAt > now && awayAt < next) next = awayAt;
      }
    }
    if (s.preferred && s.preferred.expiresAt < next) next = s.preferred.expiresAt;
    if (s.statusMessage && s.statusMessage.expiresAt < next) next = s.statusMessage.expiresAt;
    if (s.timer && s.timer.at === next) return;
    s.timer?.cancel();
    s.timer = undefined;
    if (next === Infinity) return;
    s.timer = this.clock.schedule(next, () => {
      s.timer = undefined;
      if (this.users.get(userId) !== s) return;
      this.update(userId, s);
    });
  }

  /** Cancel all timers (simulator close). */
  dispose(): void {
    for (const s of this.users.values()) s.timer?.cancel();
  }
}

/** A session's state at `now` after fading; undefined once expired. */
function effective(session: Session, now: number): readonly [string, string] | undefined {
  if (session.expiresAt <= now) return undefined;
  if (session.kind === 'app' && session.availability === 'Available') {
    const idle = now - session.refreshedAt;
    // Graph: presence-setpresence, "Timeout, expiration, and keep alive": Available/AvailableInactive, then Away/Away
    if (idle >= FADE_AWAY_AFTER) return ['Away', 'Away'];
    if (idle >= FADE_IDLE_AFTER) return ['Available', 'AvailableInactive'];
  }
  return [session.availability, session.activity];
}
