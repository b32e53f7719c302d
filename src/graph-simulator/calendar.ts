/**
 * Each user's calendar as free/busy blocks: what getSchedule reports. Only
 * what the API shows is kept (status, start, end, and an optional subject and
 * location); no meeting bodies, attendees or recurrence.
 */

/** Graph freeBusyStatus values a block can have (resources/freebusystatus). */
export const FREE_BUSY_STATUSES = ['free', 'tentative', 'busy', 'oof', 'workingElsewhere'] as const;
export type FreeBusyStatus = (typeof FREE_BUSY_STATUSES)[number];

export interface CalendarBlock {
  status: FreeBusyStatus;
  start: number;
  end: number;
  subject?: string;
  location?: string;
  isPrivate?: boolean;
}

export class CalendarBook {
  private readonly blocks = new Map<string, CalendarBlock[]>();

  add(userId: string, block: CalendarBlock): void {
    const list = this.blocks.get(userId) ?? [];
    list.push(block);
    list.sort((a, b) => a.start - b.start);
    this.blocks.set(userId, list);
  }

  /** Blocks overlapping [from, to). */
  between(userId: string, from: number, to: number): CalendarBlock[] {
    return (this.blocks.get(userId) ?? []).filter((b) => b.start < to && b.end > from);
  }

  clear(userId: string): void {
    this.blocks.delete(userId);
  }
}
