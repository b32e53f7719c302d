/**
 * Shared copies of strings many subscriptions hold alike (the AoR watched, the
 * To value of its watchers, next-hop addresses): one string for all instead
 * of one per subscription. Bounded, so values a peer makes up cannot grow it
 * without limit; past the bound a value is copied as before, not shared.
 */
export class Interner {
  private readonly table = new Map<string, string>();

  constructor(private readonly max = 200_000) {}

  /** A flat copy of `s` (never a slice keeping a parsed message alive), shared with equal strings while room lasts. */
  get(s: string): string {
    const known = this.table.get(s);
    if (known !== undefined) return known;
    const copy = s.length < 13 ? s : Buffer.from(s, 'utf8').toString('utf8');
    if (this.table.size < this.max) this.table.set(copy, copy);
    return copy;
  }

  get size(): number {
    return this.table.size;
  }
}

/** One table for the process: subscription strings are the same across notifiers' packages. */
export const sharedStrings = new Interner();
