/**
 * Which telephony feeders (trunks, by their source name `trunk:<name>`) are
 * live, for everyone and per person. Unknown is not idle (DESIGN.md): a
 * person whose expected feeders are all down shows line state 'unknown', not
 * a free line.
 *
 * - A feeder down for everyone (its trunk stopped answering OPTIONS) has no
 *   current state: what it last said is not used until it is back.
 * - A feeder down for one person (their upstream subscription failed: the
 *   device or user is unreachable at the PBX) keeps its last state for the
 *   watcher's grace period; once that is cleared the person is unknown.
 */
export class FeederLiveness {
  private readonly down = new Set<string>();
  private readonly downFor = new Map<string, Set<string>>();
  private readonly expected = new Map<string, Set<string>>();

  /** `feeder` is where `personId`'s telephony is expected to come from. */
  expect(personId: string, feeder: string): void {
    let set = this.expected.get(personId);
    if (set === undefined) this.expected.set(personId, (set = new Set()));
    set.add(feeder);
  }

  /** The feeder is (un)reachable for everyone; true when that changed. */
  setReachable(feeder: string, reachable: boolean): boolean {
    if (reachable) return this.down.delete(feeder);
    if (this.down.has(feeder)) return false;
    this.down.add(feeder);
    return true;
  }

  /** The feeder is (un)reachable for one person; true when that changed. */
  setReachableFor(personId: string, feeder: string, reachable: boolean): boolean {
    let set = this.downFor.get(personId);
    if (reachable) {
      if (set === undefined || !set.delete(feeder)) return false;
      if (set.size === 0) this.downFor.delete(personId);
      return true;
    }
    if (set === undefined) this.downFor.set(personId, (set = new Set()));
    if (set.has(feeder)) return false;
    set.add(feeder);
    return true;
  }

  /** Whether what `feeder` said is current (false while it is down for everyone). */
  isCurrent(feeder: string): boolean {
    return !this.down.has(feeder);
  }

  /** The person has expected feeders and every one of them is down (for everyone or for them). */
  noneLive(personId: string): boolean {
    const set = this.expected.get(personId);
    if (set === undefined || set.size === 0) return false;
    const mine = this.downFor.get(personId);
    for (const f of set) if (!this.down.has(f) && mine?.has(f) !== true) return false;
    return true;
  }

  /** The first expected feeder (the origin an 'unknown' line is stamped with). */
  firstExpected(personId: string): string | undefined {
    const set = this.expected.get(personId);
    return set === undefined ? undefined : set.values().next().value;
  }

  /** People expecting `feeder`. */
  expecting(feeder: string): string[] {
    const out: string[] = [];
    for (const [personId, set] of this.expected) if (set.has(feeder)) out.push(personId);
    return out;
  }
}
