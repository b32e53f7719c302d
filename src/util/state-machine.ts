/**
 * Guarded transitions of an explicit state machine: a frozen table says which
 * changes are allowed; a change not in it is refused and reported. Policy: in
 * production (`'log'`, the default) an invalid change is logged at error level
 * and not made (the caller gets false), never thrown into the code that asked
 * for it; tests construct their machines with `'throw'`, so an invalid change
 * fails them loudly (InvalidTransitionError). The check is two property reads,
 * no allocation, so it may sit on a per-message path.
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

/** What a refused change does: 'log' (production: logged at error level, not made) or 'throw' (tests). */
export type RefusalPolicy = 'log' | 'throw';

/** A change the table refuses, thrown under the 'throw' policy. */
export class InvalidTransitionError extends Error {
  constructor(
    readonly machine: string,
    readonly from: string,
    readonly to: string,
  ) {
    super(`${machine}: state change ${from} → ${to} refused`);
    this.name = 'InvalidTransitionError';
  }
}

/** Under 'throw', throw the refusal; under 'log', return (the caller logs it and returns false). */
export function throwIfStrict(policy: RefusalPolicy, machine: string, from: string, to: string): void {
  if (policy === 'throw') throw new InvalidTransitionError(machine, from, to);
}
