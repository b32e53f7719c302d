/**
 * Guarded transitions of an explicit state machine: a frozen table says which
 * changes are allowed; a change not in it is refused and reported. Policy (the
 * same in tests and production): an invalid change is logged at error level
 * through `refused` and not made (the caller gets false); it is never thrown
 * into the code that asked for it. The check is two property reads, no
 * allocation, so it may sit on a per-message path.
 */

/** For each state, the states it may change to (absent = refused). */
export type TransitionTable<S extends string> = Readonly<Record<S, Readonly<Partial<Record<S, true>>>>>;

/** Build a table from lists (frozen). */
export function transitionTable<S extends string>(allowed: Readonly<Record<S, readonly S[]>>): TransitionTable<S> {
  const table = {} as Record<S, Partial<Record<S, true>>>;
  for (const from of Object.keys(allowed) as S[]) {
    const row: Partial<Record<S, true>> = {};
    for (const to of allowed[from]) row[to] = true;
    table[from] = Object.freeze(row);
  }
  return Object.freeze(table);
}

/** True when `table` allows `from` → `to`. */
export function canTransition<S extends string>(table: TransitionTable<S>, from: S, to: S): boolean {
  return table[from][to] === true;
}

/** Reports a refused change (e.g. a logger's error). */
export type RefusedTransition = (machine: string, from: string, to: string) => void;
