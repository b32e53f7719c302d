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
import type { PresenceStore } from '../core/presence-store.js';
import type { Logger } from '../util/logger.js';
import type { Clock, Timer } from './clock.js';
import type { ObserverRef } from './observer.js';
import { graphFailure, isTransient, type GraphFailure } from './client.js';

export interface PresenceWriterOptions {
  /** app-token client (Presence.ReadWrite.All) */
  client: Client;
  directory: Directory;
  store: PresenceStore;
  logger: Logger;
  clock: Clock;
  /** the app's client id: Graph keys the app's session by it */
  sessionId: string;
  /** 'preferred': DND also as the user's preferred presence; 'session': as a DoNotDisturb/Presenting session; 'off': not written */
  dnd: 'preferred' | 'session' | 'off';
  /** session lifetime asked for, 5..240 */
  expirationMinutes: number;
  /** Also say why in the user's status message ("On a desk phone call"), and clear what it wrote after. */
  statusMessage?: boolean;
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
  /** the status message the gateway wrote and has not cleared yet */
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
  throttled: number;
  failures: number;
  /** targets for persons without a Teams identity */
  unmapped: number;
  lastError?: WriterError;
}

const UNKNOWN: Written = { kind: 'unknown', preferredDnd: false, at: 0 };

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
  private readonly st = { sets: 0, refreshes: 0, clears: 0, preferred: 0, throttled: 0, failures: 0, unmapped: 0 };
  private lastError: WriterError | undefined;
  private readonly expirationMs: number;
  private readonly refreshAfterMs: number;

  constructor(private readonly o: PresenceWriterOptions) {
    this.expirationMs = o.expirationMinutes * 60_000;
    // re-set a minute before expiry, or at 80 % for short sessions, whichever is earlier
    this.refreshAfterMs = Math.min(this.expirationMs - 60_000, this.expirationMs * 0.8);
  }

  start(): void {
    this.unsubscribe = this.o.store.onTeamsTarget((personId, target) => this.onTarget(personId, target));
    this.syncAll();
  }

  /** Take up every mapped person's current target (at start, and when identities were added). */
  syncAll(): void {
    for (const p of this.o.directory.all()) {
      if (p.teams?.userId === undefined) continue;
      const target = this.o.store.teamsTarget(p.id);
      if (target.kind === 'set' || this.users.has(p.id)) this.onTarget(p.id, target);
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

  private upToDate(u: UserState): boolean {
    const e = this.effective(u.desired);
    const w = u.written;
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

  /** Write (or with null, clear) the status message the gateway owns for this user. */
  private async setStatusMessage(u: UserState, text: string | null, expiresAt: number | undefined): Promise<void> {
    const statusMessage =
      text === null
        ? { message: { content: '', contentType: 'text' } }
        : {
            message: { content: text, contentType: 'text' },
            ...(expiresAt !== undefined ? { expiryDateTime: { dateTime: new Date(expiresAt).toISOString(), timeZone: 'UTC' } } : {}),
          };
    await this.o.client.api(`${this.base(u)}/setStatusMessage`).post({ statusMessage });
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
    const api = this.o.client;
    try {
      if (e.kind === 'set') {
        if (e.preferred && !w.preferredDnd) {
          // Graph: presence-setuserpreferredpresence (shows only while a session exists)
          await api.api(`${this.base(u)}/setUserPreferredPresence`).post({ availability: 'DoNotDisturb', activity: 'DoNotDisturb' });
          this.st.preferred++;
          u.written = { ...u.written, preferredDnd: true };
        } else if (!e.preferred && w.preferredDnd) {
          await api.api(`${this.base(u)}/clearUserPreferredPresence`).post({});
          u.written = { ...u.written, preferredDnd: false };
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
        const text = this.o.statusMessage === true ? STATUS_TEXT[e.target.activity] : undefined;
        if (text !== undefined && u.written.statusText !== text) {
          // Graph: presence-setstatusmessage; it expires with the session unless the call goes on.
          await this.setStatusMessage(u, text, at + this.o.expirationMinutes * 60_000 * 2);
          u.written = { ...u.written, statusText: text };
        }
        if (refresh) this.st.refreshes++;
        else this.st.sets++;
        this.queueRefresh(u, at);
        this.o.logger.debug({ personId: u.personId, userId: u.userId, availability: e.target.availability, activity: e.target.activity, refresh }, 'graph: presence session set');
      } else {
        if (w.preferredDnd) {
          await api.api(`${this.base(u)}/clearUserPreferredPresence`).post({});
          u.written = { ...u.written, preferredDnd: false };
        }
        if (w.kind === 'set' || w.kind === 'maybe') {
          try {
            await api.api(`${this.base(u)}/clearPresence`).post({ sessionId: this.o.sessionId });
          } catch (error) {
            // Graph: presence-clearpresence (404: the session had expired already, nothing to clear)
            if (graphFailure(error).status !== 404) throw error;
          }
          this.st.clears++;
        }
        if (w.statusText !== undefined) {
          await this.setStatusMessage(u, null, undefined);
        }
        u.written = { kind: 'clear', preferredDnd: false, at: this.o.clock.now() };
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
    if (e.kind === 'clear') return { kind: 'clear', preferredDnd: false, at: this.o.clock.now() };
    return { kind: 'set', availability: e.target.availability, activity: e.target.activity, preferredDnd: e.preferred, at: this.o.clock.now() };
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
    this.retryTimer?.cancel();
    this.retryTimer = undefined;
    this.waiting.clear();
    await this.idle();
  }
}
