/**
 * The calendar reader (opt-in, graph.calendar): every person's free/busy for
 * the next few hours through POST /users/{id}/calendar/getSchedule, so core
 * knows who is in a meeting now and until when.
 *
 * - Batches of at most 20 addresses (outlook-get-free-busy-schedule: "up to
 *   20 entities at once"), one request at a time (Outlook allows 4
 *   concurrent requests per mailbox: throttling-limits, Outlook service).
 * - Its own small budget (graph.calendar.share of budget.requestsPer30s),
 *   taken by its client before the shared one: the calendar never takes what
 *   presence polling needs, and its 429s pause only the calendar.
 * - A refresh every refreshMinutes; between refreshes a timer at the next
 *   block start or end keeps "now" right.
 * - A 403 (no calendar application permission) turns the status
 *   `denied`, is logged once, clears what the calendar said, and is tried
 *   again only after an hour (admin consent may come later); other failures
 *   keep the last reading and are tried at the next refresh.
 * Graph: calendar-getschedule (application permission Calendars.ReadBasic.All
 * least privileged; Calendars.Read or Calendars.ReadWrite also do).
 */
import type { Client } from '@microsoft/microsoft-graph-client';
import type { Directory } from '../core/directory.js';
import type { CalendarState } from '../core/person-state.js';
import type { PresenceHub } from '../core/presence-hub.js';
import type { Logger } from '../util/logger.js';
import type { BudgetStatus, RequestBudget } from './budget.js';
import { graphFailure } from './client.js';
import type { Clock, Timer } from '../util/clock.js';
import { blockAt, nextBoundary, parseScheduleAnswer, type ScheduleBlock } from './schedule-resource.js';

export const MAX_SCHEDULES_PER_CALL = 20;
/** After a 403 the permission is looked for again this rarely. */
export const DENIED_RETRY_MS = 60 * 60_000;

export type CalendarHealth = 'starting' | 'ok' | 'denied' | 'failing' | 'stopped';

export interface CalendarStatus {
  state: CalendarHealth;
  /** people with a Teams address whose calendar is read */
  people: number;
  /** people in a busy block now */
  busyNow: number;
  calls: number;
  lastReadAt?: string;
  lastError?: string;
  budget: BudgetStatus;
}

export interface CalendarReaderOptions {
  client: Client;
  directory: Directory;
  store: PresenceHub;
  clock: Clock;
  logger: Logger;
  refreshMinutes: number;
  lookaheadHours: number;
  /**
   * The calendar's share of the request budget (calendarRequestsPer30s): the
   * client takes it before the shared budget, and a 429 pauses only it.
   */
  budget: RequestBudget;
}

/** dateTime as getSchedule takes it: no zone suffix, the zone in timeZone. */
function utcDateTime(ms: number): { dateTime: string; timeZone: string } {
  return { dateTime: new Date(ms).toISOString().slice(0, 19), timeZone: 'UTC' };
}

export class CalendarReader {
  private readonly blocks = new Map<string, ScheduleBlock[]>();
  private readonly shown = new Map<string, CalendarState>();
  private state: CalendarHealth = 'starting';
  private calls = 0;
  private lastReadAt: number | undefined;
  private lastError: string | undefined;
  private nextReadAt = 0;
  private timer: Timer | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;

  constructor(private readonly o: CalendarReaderOptions) {}

  private get budget(): RequestBudget {
    return this.o.budget;
  }

  /**
   * People whose calendar is read, by SMTP address (getSchedule's `schedules`
   * are SMTP addresses: https://learn.microsoft.com/en-us/graph/api/calendar-getschedule):
   * the user's `mail` from directory sync (or the users read of a static
   * entry). Only when Graph gave no mail is the UPN tried instead: in many
   * tenants it is also the primary SMTP address, and where it is not, Graph
   * answers that schedule with an error entry, shown as not read.
   */
  private people(): Array<{ personId: string; address: string; userId?: string }> {
    const out: Array<{ personId: string; address: string; userId?: string }> = [];
    for (const p of this.o.directory.all()) {
      const address = p.teams?.mail ?? p.teams?.upn;
      if (address === undefined || address === '') continue;
      out.push(p.teams?.userId !== undefined ? { personId: p.id, address, userId: p.teams.userId } : { personId: p.id, address });
    }
    return out;
  }

  start(): Promise<void> {
    return this.refresh();
  }

  /** Read every calendar now (tests, and the timer). */
  refresh(): Promise<void> {
    this.running ??= this.readAll().finally(() => {
      this.running = undefined;
      this.apply();
    });
    return this.running;
  }

  private async readAll(): Promise<void> {
    if (this.stopped) return;
    const people = this.people();
    const now = this.o.clock.now();
    const from = Math.floor(now / 60_000) * 60_000;
    const body = { startTime: utcDateTime(from), endTime: utcDateTime(from + this.o.lookaheadHours * 3_600_000), availabilityViewInterval: 60 };
    let failed = false;
    for (let i = 0; i < people.length && !this.stopped; i += MAX_SCHEDULES_PER_CALL) {
      const batch = people.slice(i, i + MAX_SCHEDULES_PER_CALL);
      const mailbox = batch[0]?.userId ?? batch[0]?.address ?? '';
      if (this.stopped) return;
      this.calls++;
      try {
        const answer: unknown = await this.o.client
          .api(`/users/${encodeURIComponent(mailbox)}/calendar/getSchedule`)
          .header('Prefer', 'outlook.timezone="UTC"')
          .post({ schedules: batch.map((p) => p.address), ...body });
        const parsed = parseScheduleAnswer(answer);
        for (const p of batch) {
          const key = p.address.toLowerCase();
          const got = parsed.blocks.get(key);
          if (got !== undefined) this.blocks.set(p.personId, got);
          else this.blocks.delete(p.personId);
        }
      } catch (error) {
        const f = graphFailure(error);
        if (f.status === 403) {
          this.deny(`${f.status} ${f.code}: ${f.message}`);
          return;
        }
        failed = true;
        this.fail(`${f.status || ''} ${f.code} ${f.message}`.trim());
      }
    }
    const known = new Set(people.map((p) => p.personId));
    for (const id of [...this.blocks.keys()]) if (!known.has(id)) this.blocks.delete(id);
    this.lastReadAt = this.o.clock.now();
    this.nextReadAt = this.lastReadAt + this.o.refreshMinutes * 60_000;
    if (!failed) {
      if (this.state !== 'ok') this.o.logger.info({ people: people.length, calls: this.calls }, 'graph: calendar read');
      this.state = 'ok';
      this.lastError = undefined;
    }
  }

  private deny(reason: string): void {
    if (this.state !== 'denied') {
      this.o.logger.error(
        { reason },
        'graph: calendar: getSchedule refused (403): grant the app the application permission Calendars.ReadBasic.All (or Calendars.Read) with admin consent, or set graph.calendar.enabled: false; tried again in an hour',
      );
    }
    this.state = 'denied';
    this.lastError = reason;
    this.blocks.clear();
    this.nextReadAt = this.o.clock.now() + DENIED_RETRY_MS;
  }

  private fail(reason: string): void {
    if (this.state !== 'failing') this.o.logger.warn({ reason }, 'graph: calendar: getSchedule failed; the last reading is kept and read again at the next refresh');
    this.state = 'failing';
    this.lastError = reason;
  }

  /** Tell core each person's block now; arm the timer for the next block edge or refresh. */
  private apply(): void {
    if (this.stopped) return;
    const now = this.o.clock.now();
    let wake = this.nextReadAt;
    const ids = new Set([...this.blocks.keys(), ...this.shown.keys()]);
    for (const personId of ids) {
      const blocks = this.blocks.get(personId) ?? [];
      const b = blockAt(blocks, now);
      const before = this.shown.get(personId);
      if (b === undefined) {
        if (before !== undefined) {
          this.shown.delete(personId);
          this.setCalendar(personId, undefined);
        }
      } else if (before === undefined || before.status !== b.status || before.from !== b.start || before.until !== b.end) {
        const next: CalendarState = { status: b.status, from: b.start, until: b.end, at: now };
        this.shown.set(personId, next);
        this.setCalendar(personId, next);
      }
      const edge = nextBoundary(blocks, now);
      if (edge !== undefined && edge < wake) wake = edge;
    }
    this.timer?.cancel();
    this.timer = this.o.clock.after(Math.max(1_000, wake - now), () => {
      this.timer = undefined;
      if (this.o.clock.now() >= this.nextReadAt) void this.refresh();
      else this.apply();
    });
  }

  private setCalendar(personId: string, c: CalendarState | undefined): void {
    try {
      this.o.store.setCalendar(personId, c);
    } catch (error) {
      // a person removed from the directory meanwhile
      this.o.logger.debug({ personId, err: error }, 'graph: calendar: person gone');
    }
  }

  status(): CalendarStatus {
    let busyNow = 0;
    for (const c of this.shown.values()) if (c.status === 'busy' || c.status === 'tentative') busyNow++;
    const s: CalendarStatus = { state: this.state, people: this.people().length, busyNow, calls: this.calls, budget: this.budget.status() };
    if (this.lastReadAt !== undefined) s.lastReadAt = new Date(this.lastReadAt).toISOString();
    if (this.lastError !== undefined) s.lastError = this.lastError;
    return s;
  }

  async idle(): Promise<void> {
    await this.running;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.state = 'stopped';
    this.timer?.cancel();
    this.timer = undefined;
    this.o.budget.drain();
    await this.running?.catch(() => undefined);
  }
}
