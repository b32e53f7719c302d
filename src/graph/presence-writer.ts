/**
 * PBX state out to Teams: keeps the gateway's own presence session per user
 * in line with the core's TeamsTarget. Per user only the latest target is
 * sent and only one request is in flight; a 'set' is re-set before its
 * expirationDuration runs out for as long as it stays the target; 429s wait
 * for Retry-After; failures are kept in status(), never thrown.
 */
import type { Client } from '@microsoft/microsoft-graph-client';
import type { Directory } from '../core/directory.js';
import type { TeamsTarget } from '../core/person-state.js';
import type { PresenceHub } from '../core/presence-hub.js';
import type { Logger } from '../util/logger.js';
import type { Clock, Timer } from '../util/clock.js';
import type { ObserverRef } from './observer.js';
import { graphFailure, isRecord, isTransient, type GraphFailure } from './client.js';
import { expiryFromGraph, graphDateTime, preferredFromPresence, type SavedPresence, type SavedPresenceStore } from './saved-presence.js';

export interface PresenceWriterOptions {
  /** app-token client (Presence.ReadWrite.All) */
  client: Client;
  directory: Directory;
  store: PresenceHub;
  logger: Logger;
  clock: Clock;
  /** the app's client id: Graph keys the app's session by it */
  sessionId: string;
  /** 'preferred': DND also as the user's preferred presence; 'session': as a DoNotDisturb/Presenting session; 'off': not written */
  dnd: 'preferred' | 'session' | 'off';
  /** session lifetime asked for, 5..240 */
  expirationMinutes: number;
  /** Also say why in the user's status message ("On a desk phone call"), and restore the person's own after. */
  statusMessage?: boolean;
  /**
   * 'busy' (default): a PBX call is a Busy/InACall session, display only.
   * 'dnd': also DoNotDisturb as the person's preferred presence while the
   * call lasts, so Teams calls do not ring through; what they had is
   * restored after.
   */
  duringCall?: 'busy' | 'dnd';
  /** where the "before" state survives a restart (default: memory only) */
  saved?: SavedPresenceStore;
  /**
   * After a restart, how long a person taken over mid-call keeps what the
   * gateway set while their PBX state is not known again yet (default 60 s):
   * restoring at once would flap when the PBX reports the call a moment later.
   */
  restoreGraceMs?: number;
  /** told how long after a state arose Graph accepted it */
  observer?: ObserverRef;
}

/** The status message written with each session pair (Graph shows it under the name in Teams). */
const STATUS_TEXT: Readonly<Record<string, string>> = {
  InACall: 'On a desk phone call',
  InAConferenceCall: 'In a desk phone conference',
  Presenting: 'Do not disturb (desk phone)',
  Away: 'Away (desk phone)',
};

type SetTarget = Extract<TeamsTarget, { kind: 'set' }>;

/** What the gateway last established in Teams for a user. */
interface Written {
  /** 'unknown': nothing known (start); 'maybe': a set failed on the way and may have been applied */
  kind: 'set' | 'clear' | 'unknown' | 'maybe';
  availability?: string;
  activity?: string;
  preferredDnd: boolean;
  /** the gateway holds the person's preferred presence at DoNotDisturb for a PBX call (duringCall: dnd) */
  callDnd: boolean;
  /** the status message the gateway wrote and has not restored yet */
  statusText?: string;
  /** when the session was last set (re-set is due from it) */
  at: number;
}

interface UserState {
  personId: string;
  userId: string;
  desired: TeamsTarget;
  written: Written;
  busy: boolean;
  /** not before (a 429's Retry-After, a back-off) */
  retryAt: number;
  failures: number;
  /** the re-set entry in the queue */
  refreshDue: number;
  /** the session is due for a re-set (kept until one succeeds) */
  refreshNeeded: boolean;
  /** when the oldest target not yet written arose (for the latency metric) */
  changedAt?: number;
  /** what the person had before the gateway took over (restored after) */
  saved?: SavedPresence;
}

export interface WriterError {
  personId: string;
  status: number;
  code: string;
  message: string;
  at: string;
}

export interface WriterStatus {
  users: number;
  inFlight: number;
  /** users whose Teams state is not yet what the core wants */
  pending: number;
  sets: number;
  refreshes: number;
  clears: number;
  preferred: number;
  /** DoNotDisturb set for a PBX call (duringCall: dnd), and restores of what people had */
  callDnd: number;
  restored: number;
  throttled: number;
  failures: number;
  /** targets for persons without a Teams identity */
  unmapped: number;
  lastError?: WriterError;
}

const UNKNOWN: Written = { kind: 'unknown', preferredDnd: false, callDnd: false, at: 0 };

const CALL_ACTIVITIES = new Set(['InACall', 'InAConferenceCall']);

export class PresenceWriter {
  private readonly users = new Map<string, UserState>();
  /** re-set queue: every entry is `expiration - lead` after its set, so FIFO order is due order */
  private refreshQueue: Array<{ personId: string; due: number }> = [];
  private refreshHead = 0;
  private refreshTimer: Timer | undefined;
  /** users waiting out a Retry-After or back-off, on one timer for the earliest */
  private readonly waiting = new Set<UserState>();
  private retryTimer: Timer | undefined;
  private retryArmedFor = Infinity;
  private unsubscribe: (() => void) | undefined;
  private stopped = false;
  private inFlight = 0;
  private readonly running = new Set<Promise<void>>();
  private readonly st = { sets: 0, refreshes: 0, clears: 0, preferred: 0, callDnd: 0, restored: 0, throttled: 0, failures: 0, unmapped: 0 };
  /** saved "before" states loaded at start, by person */
  private readonly loaded = new Map<string, SavedPresence>();
  private graceTimer: Timer | undefined;
  private graceOver = false;
  private lastError: WriterError | undefined;
  private readonly expirationMs: number;
  private readonly refreshAfterMs: number;

  constructor(private readonly o: PresenceWriterOptions) {
    this.expirationMs = o.expirationMinutes * 60_000;
    // re-set a minute before expiry, or at 80 % for short sessions, whichever is earlier
    this.refreshAfterMs = Math.min(this.expirationMs - 60_000, this.expirationMs * 0.8);
  }

  /** Load what a previous run saved (people taken over mid-call), then follow the targets. */
  async start(): Promise<void> {
    try {
      for (const r of (await this.o.saved?.load()) ?? []) this.loaded.set(r.personId, r);
    } catch (error) {
      this.o.logger.warn({ err: error }, 'graph: cannot read the saved presence of people taken over; they are not restored');
    }
    if (this.stopped) return;
    this.unsubscribe = this.o.store.onTeamsTarget((personId, target) => this.onTarget(personId, target));
    this.syncAll();
    if (this.loaded.size > 0) {
      // who is still not in a call when the grace ends gets their own state back
      this.graceTimer = this.o.clock.after(this.o.restoreGraceMs ?? 60_000, () => {
        this.graceTimer = undefined;
        this.graceOver = true;
        this.syncAll();
      });
    }
  }

  /** Take up every mapped person's current target (at start, and when identities were added). */
  syncAll(): void {
    for (const p of this.o.directory.all()) {
      if (p.teams?.userId === undefined) continue;
      const target = this.o.store.teamsTarget(p.id);
      if (target.kind === 'set' || this.users.has(p.id) || (this.loaded.has(p.id) && this.graceOver)) this.onTarget(p.id, target);
    }
  }

  private onTarget(personId: string, target: TeamsTarget): void {
    if (this.stopped) return;
    let u = this.users.get(personId);
    if (u === undefined) {
      const userId = this.o.directory.get(personId)?.teams?.userId;
      if (userId === undefined) {
        this.st.unmapped++;
        this.o.logger.debug({ personId }, 'graph: no Teams identity; target not written');
        return;
      }
      u = { personId, userId, desired: target, written: UNKNOWN, busy: false, retryAt: 0, failures: 0, refreshDue: 0, refreshNeeded: false };
      const saved = this.loaded.get(personId);
      if (saved !== undefined && saved.userId === userId) {
        // taken over by the previous run: what it holds is still to be given back
        this.loaded.delete(personId);
        u.saved = saved;
        u.written = { ...UNKNOWN, callDnd: saved.preferred !== undefined, ...(saved.statusMessage !== undefined ? { statusText: '' } : {}) };
      }
      this.users.set(personId, u);
    }
    u.desired = target;
    if (u.changedAt === undefined && !this.upToDate(u)) u.changedAt = this.o.clock.now();
    this.kick(u);
  }

  /** The session pair actually to be written for a target, given the DND mode ('clear' when DND is off). */
  private effective(t: TeamsTarget): { kind: 'clear' } | { kind: 'set'; target: SetTarget; preferred: boolean } {
    if (t.kind === 'clear') return t;
    const dnd = t.availability === 'DoNotDisturb';
    if (dnd && this.o.dnd === 'off') return { kind: 'clear' };
    return { kind: 'set', target: t, preferred: dnd && this.o.dnd === 'preferred' && t.preferredDnd === true };
  }

  /** DoNotDisturb as the preferred presence for this target (a PBX call with duringCall: dnd). */
  private wantsCallDnd(e: ReturnType<PresenceWriter['effective']>): boolean {
    return e.kind === 'set' && this.o.duringCall === 'dnd' && CALL_ACTIVITIES.has(e.target.activity) && !e.preferred;
  }

  /** The status message the gateway wants shown for this target, if any. */
  private textFor(e: ReturnType<PresenceWriter['effective']>): string | undefined {
    return e.kind === 'set' && this.o.statusMessage === true ? STATUS_TEXT[e.target.activity] : undefined;
  }

  private upToDate(u: UserState): boolean {
    const e = this.effective(u.desired);
    const w = u.written;
    if (w.callDnd !== this.wantsCallDnd(e) || w.statusText !== this.textFor(e)) return false;
    if (e.kind === 'clear') return (w.kind === 'clear' || w.kind === 'unknown') && !w.preferredDnd;
    return !u.refreshNeeded && w.kind === 'set' && w.availability === e.target.availability && w.activity === e.target.activity && w.preferredDnd === e.preferred;
  }

  private kick(u: UserState): void {
    if (u.busy || this.stopped) return;
    if (this.upToDate(u)) return;
    const now = this.o.clock.now();
    if (u.retryAt > now) {
      this.waiting.add(u);
      this.armRetry(u.retryAt);
      return;
    }
    this.send(u);
  }

  private send(u: UserState): void {
    u.busy = true;
    this.inFlight++;
    const p = this.write(u)
      .catch((error: unknown) => this.o.logger.error({ err: error, personId: u.personId }, 'graph: presence write crashed'))
      .finally(() => {
        u.busy = false;
        this.inFlight--;
        this.running.delete(p);
        // what came in meanwhile: only the latest target counts
        this.kick(u);
      });
    this.running.add(p);
  }

  private base(u: UserState): string {
    return `/users/${encodeURIComponent(u.userId)}/presence`;
  }

  /**
   * Write a status message: `expiryDateTime.dateTime` without a zone suffix,
   * the zone in `timeZone`; content type text only.
   * Graph: presence-setstatusmessage, resources/datetimetimezone
   */
  private async setStatusMessage(u: UserState, content: string, contentType: string, expiresAt: number | undefined): Promise<void> {
    const statusMessage = {
      message: { content, contentType },
      ...(expiresAt !== undefined ? { expiryDateTime: graphDateTime(expiresAt) } : {}),
    };
    await this.o.client.api(`${this.base(u)}/setStatusMessage`).post({ statusMessage });
  }

  /**
   * Read and keep what the person has before the gateway overwrites it (their
   * preferred presence, their status message), saved before anything is
   * written. See saved-presence.ts for what Graph lets us read.
   */
  private async capture(u: UserState, preferred: boolean, status: boolean): Promise<void> {
    const p: unknown = await this.o.client.api(this.base(u)).get();
    const saved: SavedPresence = u.saved ?? { personId: u.personId, userId: u.userId, savedAt: this.o.clock.now() };
    if (preferred && saved.preferred === undefined) {
      const a = isRecord(p) && typeof p['availability'] === 'string' ? p['availability'] : undefined;
      const b = isRecord(p) && typeof p['activity'] === 'string' ? p['activity'] : undefined;
      // a DoNotDisturb the gateway set itself (dnd: preferred) is not the person's
      saved.preferred = u.written.preferredDnd ? null : preferredFromPresence(a, b);
    }
    if (status && saved.statusMessage === undefined) {
      const sm = isRecord(p) ? p['statusMessage'] : undefined;
      const msg = isRecord(sm) && isRecord(sm['message']) ? sm['message'] : undefined;
      const content = msg !== undefined && typeof msg['content'] === 'string' ? msg['content'] : '';
      if (content === '') saved.statusMessage = null;
      else {
        const expiresAt = isRecord(sm) ? expiryFromGraph(sm['expiryDateTime']) : undefined;
        saved.statusMessage = { content, contentType: typeof msg?.['contentType'] === 'string' ? msg['contentType'] : 'text', ...(expiresAt !== undefined ? { expiresAt } : {}) };
      }
    }
    u.saved = saved;
    await this.persistSaved(u);
  }

  private async persistSaved(u: UserState): Promise<void> {
    const saved = u.saved;
    try {
      if (saved === undefined || (saved.preferred === undefined && saved.statusMessage === undefined)) {
        u.saved = undefined;
        await this.o.saved?.remove(u.personId);
      } else await this.o.saved?.save(saved);
    } catch (error) {
      // Teams is still handled; only a restart mid-call could not restore
      this.o.logger.warn({ err: error, personId: u.personId }, 'graph: cannot save what the person had before; a restart now would not restore it');
    }
  }

  /** Give the person their preferred presence back (or none: automatic presence again). */
  private async restorePreferred(u: UserState): Promise<void> {
    const before = u.saved?.preferred ?? null;
    if (before !== null) {
      // Graph: presence-setuserpreferredpresence (its remaining lifetime is not readable: the default applies)
      await this.o.client.api(`${this.base(u)}/setUserPreferredPresence`).post({ availability: before.availability, activity: before.activity });
    } else {
      // Graph: presence-clearuserpreferredpresence answers 200 (or 204, as some SDK samples show): both are success
      await this.o.client.api(`${this.base(u)}/clearUserPreferredPresence`).post({});
    }
    u.written = { ...u.written, callDnd: false };
    if (u.saved !== undefined) delete u.saved.preferred;
    this.st.restored++;
    await this.persistSaved(u);
  }

  /** Give the person their status message back (an empty one if they had none, or if it has expired meanwhile). */
  private async restoreStatus(u: UserState): Promise<void> {
    const before = u.saved?.statusMessage ?? null;
    const now = this.o.clock.now();
    if (before === null || (before.expiresAt !== undefined && before.expiresAt <= now)) await this.setStatusMessage(u, '', 'text', undefined);
    else await this.setStatusMessage(u, before.content, before.contentType, before.expiresAt);
    const { statusText: _dropped, ...rest } = u.written;
    u.written = rest;
    if (u.saved !== undefined) delete u.saved.statusMessage;
    this.st.restored++;
    await this.persistSaved(u);
  }

  private async write(u: UserState): Promise<void> {
    // the directory sync may have moved the person to another Teams user
    const userId = this.o.directory.get(u.personId)?.teams?.userId;
    if (userId !== undefined && userId !== u.userId) {
      u.userId = userId;
      u.written = UNKNOWN;
    }
    const e = this.effective(u.desired);
    const w = u.written;
    const refresh = e.kind === 'set' && w.kind === 'set' && w.availability === e.target.availability && w.activity === e.target.activity;
    const callDnd = this.wantsCallDnd(e);
    const text = this.textFor(e);
    const api = this.o.client;
    try {
      // what the person has is read and saved before the gateway overwrites any of it
      const takePreferred = callDnd && !w.callDnd && u.saved?.preferred === undefined;
      const takeStatus = text !== undefined && w.statusText === undefined && u.saved?.statusMessage === undefined;
      if (takePreferred || takeStatus) await this.capture(u, takePreferred, takeStatus);
      // the call is over: the person's own preferred presence back first
      if (!callDnd && u.written.callDnd) await this.restorePreferred(u);
      if (e.kind === 'set') {
        if (e.preferred && !u.written.preferredDnd) {
          // Graph: presence-setuserpreferredpresence (shows only while a session exists)
          await api.api(`${this.base(u)}/setUserPreferredPresence`).post({ availability: 'DoNotDisturb', activity: 'DoNotDisturb' });
          this.st.preferred++;
          u.written = { ...u.written, preferredDnd: true };
        } else if (!e.preferred && u.written.preferredDnd) {
          await api.api(`${this.base(u)}/clearUserPreferredPresence`).post({});
          u.written = { ...u.written, preferredDnd: false };
        }
        if (callDnd && (!u.written.callDnd || refresh || w.kind !== 'set')) {
          // Busy-on-busy: a Busy session is display only and Teams calls still ring; a preferred
          // DoNotDisturb stops them. It lapses on its own (twice the session) if the gateway dies.
          await api.api(`${this.base(u)}/setUserPreferredPresence`).post({
            availability: 'DoNotDisturb',
            activity: 'DoNotDisturb',
            expirationDuration: `PT${this.o.expirationMinutes * 2}M`,
          });
          if (!u.written.callDnd) this.st.callDnd++;
          u.written = { ...u.written, callDnd: true };
        }
        await api.api(`${this.base(u)}/setPresence`).post({
          sessionId: this.o.sessionId,
          availability: e.target.availability,
          activity: e.target.activity,
          // Graph: presence-setpresence (sessionId = app id; PT5M to PT4H)
          expirationDuration: `PT${this.o.expirationMinutes}M`,
        });
        const at = this.o.clock.now();
        u.refreshNeeded = false;
        u.written = { ...u.written, kind: 'set', availability: e.target.availability, activity: e.target.activity, at };
        if (text !== undefined && (u.written.statusText !== text || refresh)) {
          // re-written with every session refresh, so it lasts as long as the call and lapses soon after
          await this.setStatusMessage(u, text, 'text', at + this.o.expirationMinutes * 60_000 * 2);
          u.written = { ...u.written, statusText: text };
        } else if (text === undefined && u.written.statusText !== undefined) await this.restoreStatus(u);
        if (refresh) this.st.refreshes++;
        else this.st.sets++;
        this.queueRefresh(u, at);
        this.o.logger.debug({ personId: u.personId, userId: u.userId, availability: e.target.availability, activity: e.target.activity, refresh, callDnd }, 'graph: presence session set');
      } else {
        if (u.written.preferredDnd) {
          // the person replaced the gateway's preferred DoNotDisturb with a status of their own: it is theirs, not cleared
          if (u.desired.kind !== 'clear' || u.desired.personChose !== true) await api.api(`${this.base(u)}/clearUserPreferredPresence`).post({});
          u.written = { ...u.written, preferredDnd: false };
        }
        if (u.written.kind === 'set' || u.written.kind === 'maybe') {
          try {
            await api.api(`${this.base(u)}/clearPresence`).post({ sessionId: this.o.sessionId });
          } catch (error) {
            // Graph: presence-clearpresence (404: the session had expired already, nothing to clear)
            if (graphFailure(error).status !== 404) throw error;
          }
          this.st.clears++;
        }
        if (u.written.statusText !== undefined) await this.restoreStatus(u);
        u.written = { kind: 'clear', preferredDnd: false, callDnd: false, at: this.o.clock.now() };
        u.refreshNeeded = false;
        this.o.logger.debug({ personId: u.personId, userId: u.userId }, 'graph: presence session cleared');
      }
      u.failures = 0;
      u.retryAt = 0;
      if (u.changedAt !== undefined && !refresh) this.o.observer?.()?.sipToTeams?.(Math.max(0, this.o.clock.now() - u.changedAt) / 1000);
      u.changedAt = undefined;
    } catch (error) {
      this.failed(u, graphFailure(error));
    }
  }

  private failed(u: UserState, f: GraphFailure): void {
    this.st.failures++;
    u.failures++;
    this.lastError = { personId: u.personId, status: f.status, code: f.code, message: f.message, at: new Date(this.o.clock.now()).toISOString() };
    const log = { personId: u.personId, userId: u.userId, status: f.status, code: f.code, reason: f.message };
    if (f.status === 429) this.st.throttled++;
    if (isTransient(f)) {
      // a set that got no answer may still have been applied: a later 'clear' must be sent
      if (this.effective(u.desired).kind === 'set' && u.written.kind !== 'set') u.written = { ...u.written, kind: 'maybe' };
      const backoff = Math.min(5 * 60_000, 1000 * 2 ** Math.min(u.failures - 1, 9));
      u.retryAt = this.o.clock.now() + (f.retryAfterMs !== undefined ? Math.max(1000, f.retryAfterMs) : backoff);
      this.o.logger.warn({ ...log, retryInMs: u.retryAt - this.o.clock.now() }, 'graph: presence write failed; will retry');
    } else {
      // a refusal (400, 403, 404): retrying the same request would fail the same way; the next target tries again
      this.o.logger.error(log, 'graph: presence write refused');
      u.written = this.effectiveAsWritten(u);
      u.refreshNeeded = false;
      u.changedAt = undefined;
    }
  }

  /** After a refusal, treat the target as handled so it is not resent in a loop. */
  private effectiveAsWritten(u: UserState): Written {
    const e = this.effective(u.desired);
    const text = this.textFor(e);
    const held = { callDnd: this.wantsCallDnd(e), ...(text !== undefined ? { statusText: text } : {}) };
    if (!held.callDnd && text === undefined && u.saved !== undefined) {
      // nothing is held any more: what could not be restored is given up (logged above)
      u.saved = undefined;
      void this.o.saved?.remove(u.personId).catch(() => undefined);
    }
    if (e.kind === 'clear') return { kind: 'clear', preferredDnd: false, ...held, at: this.o.clock.now() };
    return { kind: 'set', availability: e.target.availability, activity: e.target.activity, preferredDnd: e.preferred, ...held, at: this.o.clock.now() };
  }

  private armRetry(at: number): void {
    if (this.stopped || at >= this.retryArmedFor) return;
    this.retryTimer?.cancel();
    this.retryArmedFor = at;
    this.retryTimer = this.o.clock.after(Math.max(0, at - this.o.clock.now()), () => {
      this.retryTimer = undefined;
      this.retryArmedFor = Infinity;
      const now = this.o.clock.now();
      let next = Infinity;
      for (const w of this.waiting) {
        if (w.retryAt <= now) {
          this.waiting.delete(w);
          this.kick(w);
        } else next = Math.min(next, w.retryAt);
      }
      if (next !== Infinity) this.armRetry(next);
    });
  }

  private queueRefresh(u: UserState, at: number): void {
    const due = at + this.refreshAfterMs;
    u.refreshDue = due;
    this.refreshQueue.push({ personId: u.personId, due });
    this.armRefresh();
  }

  private armRefresh(): void {
    if (this.refreshTimer !== undefined || this.stopped) return;
    const head = this.refreshQueue[this.refreshHead];
    if (head === undefined) return;
    this.refreshTimer = this.o.clock.after(Math.max(0, head.due - this.o.clock.now()), () => {
      this.refreshTimer = undefined;
      this.runRefreshes();
    });
  }

  private runRefreshes(): void {
    const now = this.o.clock.now();
    let head = this.refreshQueue[this.refreshHead];
    let n = 0;
    while (head !== undefined && head.due <= now) {
      this.refreshHead++;
      n++;
      const u = this.users.get(head.personId);
      // stale entries (re-set or cleared since) are skipped
      if (u !== undefined && u.refreshDue === head.due && u.written.kind === 'set' && this.effective(u.desired).kind === 'set') {
        // kept until a set succeeds, so a failed or overtaken re-set is not lost
        u.refreshNeeded = true;
        this.kick(u);
      }
      head = this.refreshQueue[this.refreshHead];
    }
    // drop the consumed front now and then, not on every entry
    if (this.refreshHead > 1024 && this.refreshHead * 2 > this.refreshQueue.length) {
      this.refreshQueue = this.refreshQueue.slice(this.refreshHead);
      this.refreshHead = 0;
    }
    if (n > 1000) this.o.logger.debug({ refreshed: n }, 'graph: presence sessions re-set');
    this.armRefresh();
  }

  status(): WriterStatus {
    let pending = 0;
    for (const u of this.users.values()) if (!this.upToDate(u)) pending++;
    const s: WriterStatus = { users: this.users.size, inFlight: this.inFlight, pending, ...this.st };
    if (this.lastError !== undefined) s.lastError = { ...this.lastError };
    return s;
  }

  /** Resolves when no write is in flight (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.running.size > 0) await Promise.all([...this.running]);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe?.();
    this.refreshTimer?.cancel();
    this.refreshTimer = undefined;
    this.graceTimer?.cancel();
    this.graceTimer = undefined;
    this.retryTimer?.cancel();
    this.retryTimer = undefined;
    this.waiting.clear();
    await this.idle();
  }
}
